"""PyTorch baselines (float32, TF32 off) of the matmuls and elementwise ops that `t2md bench matmul` and
`t2md bench elementwise` time, on the same card in the same call:

- matmul: the PixArt-XL/2 and T2MD linears at T = 4096 and 16384 tokens, x [T, in] · w [out, in]ᵀ, plus
  a 4096³ square product;
- elementwise over 64M floats: x + 1, x + y, relu(x), gelu-tanh(x); GB/s counts bytes read + written once.

  python3 bench/torch_kernels.py [--json FILE]
"""
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

# (name, in, out) of the linears one XL block runs; in_proj is the Mamba-2 mixer's (2·2304 + 2·256 + 36).
LINEARS = [
    ('qkv', 1152, 3456),
    ('proj', 1152, 1152),
    ('fc1', 1152, 4608),
    ('fc2', 4608, 1152),
    ('in_proj', 1152, 5156),
    ('out_proj', 2304, 1152),
]


def bench(fn, reps=10, warm=3, inner=1):
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


def like_ours(flops):
    """The samples and calls per sync `t2md bench matmul` uses for a GEMM of `flops` (~2e11 FLOPs queued per sync)."""
    return dict(reps=5 if flops > 1e11 else 10, warm=2, inner=int(min(50, max(1, math.ceil(2e11 / flops)))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--json')
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = 'cuda'
    rows = []
    for T in (4096, 16384):
        for name, k, n in LINEARS:
            x = torch.randn(T, k, device=dev)
            w = torch.randn(n, k, device=dev)
            ms, runs = bench(lambda: F.linear(x, w), **like_ours(2 * T * n * k))
            rows.append(dict(op='matmul', impl='torch', name=name, M=T, N=n, K=k, ms=ms, tflops=2 * T * n * k / ms / 1e9, runs=runs))
            print(rows[-1]['name'], T, round(ms, 3), 'ms', round(rows[-1]['tflops'], 1), 'TFLOP/s', flush=True)
    a = torch.randn(4096, 4096, device=dev)
    b = torch.randn(4096, 4096, device=dev)
    ms, runs = bench(lambda: a @ b, **like_ours(2 * 4096**3))
    rows.append(dict(op='matmul', impl='torch', name='square', M=4096, N=4096, K=4096, ms=ms, tflops=2 * 4096**3 / ms / 1e9, runs=runs))
    del a, b
    n = 64 * 2**20
    x = torch.randn(n, device=dev)
    y = torch.randn(n, device=dev)
    for op, fn, reads in (
        ('x+1', lambda: x + 1, 1),
        ('x+y', lambda: x + y, 2),
        ('relu', lambda: torch.relu(x), 1),
        ('geluTanh', lambda: F.gelu(x, approximate='tanh'), 1),
    ):
        ms, runs = bench(fn, inner=20)
        gbps = 4 * n * (reads + 1) / ms / 1e6
        rows.append(dict(op='elementwise', impl='torch', name=op, elements=n, ms=ms, gbps=gbps, runs=runs))
        print(op, round(ms, 3), 'ms', round(gbps), 'GB/s', flush=True)
    out = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, tf32=False, baselines=rows)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=2)


if __name__ == '__main__':
    main()
