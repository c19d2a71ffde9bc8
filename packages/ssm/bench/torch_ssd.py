"""PyTorch baseline of the chunked SSD (Mamba-2 'minimal SSD', pure torch ops, float32), timed like
packages/ssm/bench/scan.ts: b=1, L in {4096, 16384, 32400}, 36 heads x 64, d_state 256, ngroups 1.
Also times mamba_ssm's Triton kernel when that package is importable.

  python3 torch_ssd.py [--json FILE]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def segsum_exp(a):
    """exp of the stable segment sum: sum_{k=j+1..i} a_k for i >= j, else 0. a: [..., T] -> [..., T, T]."""
    T = a.shape[-1]
    rep = a[..., None].expand(*a.shape, T)
    strict = torch.tril(torch.ones(T, T, dtype=torch.bool, device=a.device), -1)
    s = torch.cumsum(rep.masked_fill(~strict, 0), dim=-2)
    incl = torch.tril(torch.ones(T, T, dtype=torch.bool, device=a.device))
    return torch.exp(s.masked_fill(~incl, -torch.inf))


def ssd_chunked(x, dt, A, B, C, D, dt_bias, chunk):
    """x [b, L, H, P], dt [b, L, H], A [H], B/C [b, L, G, N]; softplus(dt + bias); y = SSD + D x."""
    b, L, H, P = x.shape
    G, N = B.shape[2], B.shape[3]
    dt = F.softplus(dt + dt_bias)
    nc = -(-L // chunk)
    pad = nc * chunk - L
    if pad:
        x_, dt_, B_, C_ = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x, dt, B, C))
    else:
        x_, dt_, B_, C_ = x, dt, B, C
    B_ = B_.repeat_interleave(H // G, dim=2)
    C_ = C_.repeat_interleave(H // G, dim=2)
    X = (x_ * dt_[..., None]).reshape(b, nc, chunk, H, P)
    Bc = B_.reshape(b, nc, chunk, H, N)
    Cc = C_.reshape(b, nc, chunk, H, N)
    a = (dt_ * A).reshape(b, nc, chunk, H).permute(0, 3, 1, 2)  # b h c l
    cs = torch.cumsum(a, dim=-1)
    Lm = segsum_exp(a)
    y_diag = torch.einsum('bclhn,bcshn,bhcls,bcshp->bclhp', Cc, Bc, Lm, X)
    decay_states = torch.exp(cs[..., -1:] - cs)
    states = torch.einsum('bclhn,bhcl,bclhp->bchpn', Bc, decay_states, X)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)
    decay_chunk = segsum_exp(F.pad(cs[..., -1], (1, 0)))
    new_states = torch.einsum('bhzc,bchpn->bzhpn', decay_chunk, states)
    prev = new_states[:, :-1]
    y_off = torch.einsum('bclhn,bchpn,bhcl->bclhp', Cc, prev, torch.exp(cs))
    y = (y_diag + y_off).reshape(b, nc * chunk, H, P)[:, :L]
    return y + x * D[:, None]


def bench(fn, reps=7, warm=2, inner=10):
    # timed as `t2md bench scan` times ssdScan: `inner` calls queued back to back, one sync, ms per call
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    runs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        torch.cuda.synchronize()
        runs.append((time.perf_counter() - t0) * 1e3 / inner)
    return sorted(runs)[len(runs) // 2], runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--json')
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = 'cuda'
    H, P, N, G = 36, 64, 256, 1
    rows = []
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined  # noqa: F401
        have_triton = True
    except Exception:
        have_triton = False
    for L in (4096, 16384, 32400):
        g = torch.Generator(device=dev).manual_seed(L)
        x = torch.rand(1, L, H, P, device=dev, generator=g) * 2 - 1
        dt = torch.rand(1, L, H, device=dev, generator=g) * 3 - 4
        A = -(torch.rand(H, device=dev, generator=g) * 7 + 1)
        B = torch.rand(1, L, G, N, device=dev, generator=g) * 2 - 1
        C = torch.rand(1, L, G, N, device=dev, generator=g) * 2 - 1
        D = torch.rand(H, device=dev, generator=g) + 0.5
        bias = torch.rand(H, device=dev, generator=g) * 2 - 1
        dy = torch.rand(1, L, H, P, device=dev, generator=g) * 2 - 1
        for chunk in (64, 128, 256):
            try:
                with torch.no_grad():
                    ms, runs = bench(lambda: ssd_chunked(x, dt, A, B, C, D, bias, chunk))
                rows.append(dict(op='ssdScan', impl='torch-chunked', L=L, chunkSize=chunk, **{'pass': 'forward'}, ms=ms, runs=runs))
                leaves = [t.detach().requires_grad_() for t in (x, dt, A, B, C, D, bias)]

                def fb():
                    y = ssd_chunked(*leaves, chunk)
                    torch.autograd.grad((y * dy).sum(), leaves)

                ms, runs = bench(fb)
                rows.append(dict(op='ssdScan', impl='torch-chunked', L=L, chunkSize=chunk, **{'pass': 'forward+backward'}, ms=ms, runs=runs))
            except torch.cuda.OutOfMemoryError as e:
                rows.append(dict(op='ssdScan', impl='torch-chunked', L=L, chunkSize=chunk, **{'pass': 'forward'}, ms=None, note=str(e)[:120]))
                torch.cuda.empty_cache()
            print(rows[-1] if rows else None, flush=True)
        if have_triton:
            from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
            ms, runs = bench(lambda: mamba_chunk_scan_combined(x, dt, A, B, C, 256, D=D, dt_bias=bias, dt_softplus=True))
            rows.append(dict(op='ssdScan', impl='mamba_ssm-triton', L=L, chunkSize=256, **{'pass': 'forward'}, ms=ms, runs=runs))
    for r in rows:
        print(f"{r['impl']:16} L={r['L']:<6} Q={r['chunkSize']:<4} {r['pass']:17} {r['ms'] if r['ms'] is None else round(r['ms'], 3)} ms")
    out = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, tf32=False, baselines=rows)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=2)


if __name__ == '__main__':
    main()
