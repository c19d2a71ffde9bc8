"""PyTorch baseline for packages/dit/bench/attention.ts: the same shapes (16 heads x L x 72, batch 1, f32).

    python3 torch_attention.py [--json FILE] [--sizes 1024,4096,16384,32400] [--runs 5]

Times torch's scaled_dot_product_attention (f32, TF32 off) forward and forward+backward, and the naive
softmax(q k^T scale) v where its L x L scores fit, with CUDA events; medians of several runs.
Writes the JSON format of attention.ts.
"""
import argparse
import datetime
import json
import statistics

import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument('--json', default='')
p.add_argument('--sizes', default='1024,4096,16384,32400')
p.add_argument('--runs', type=int, default=5)
a = p.parse_args()

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = 'cuda'
heads, dh = 16, 72


def time_it(n, f):
    # timed as `t2md bench attention` times ours: wall clock of one call ended by a sync, after a warm-up
    f()
    torch.cuda.synchronize()
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def naive(q, k, v):
    s = (q @ k.transpose(-1, -2)) * (dh ** -0.5)
    return torch.softmax(s, dim=-1) @ v


# Correctness of SDPA vs naive at a moderate size (sanity of the baseline itself).
g = torch.Generator(device=dev).manual_seed(0)
q, k, v = (torch.randn(1, 4, 1024, dh, device=dev, generator=g) for _ in range(3))
check_err = ((F.scaled_dot_product_attention(q, k, v) - naive(q, k, v)).norm() / naive(q, k, v).norm()).item()

rows = []
for L in [int(s) for s in a.sizes.split(',')]:
    n = max(3, a.runs - 2) if L >= 16384 else a.runs
    q, k, v, dy = (torch.randn(1, heads, L, dh, device=dev, generator=g) for _ in range(4))
    row = {'batch': 1, 'heads': heads, 'tokens': L, 'headDim': dh}
    try:
        row['fwdRuns'] = time_it(n, lambda: F.scaled_dot_product_attention(q, k, v))
        row['fwdMs'] = statistics.median(row['fwdRuns'])
        row['fwdTflops'] = 4 * L * L * dh * heads / (row['fwdMs'] * 1e-3) / 1e12
        qg, kg, vg = (x.clone().requires_grad_(True) for x in (q, k, v))

        def fb():
            out = F.scaled_dot_product_attention(qg, kg, vg)
            torch.autograd.grad(out, (qg, kg, vg), dy)

        row['fwdBwdRuns'] = time_it(n, fb)
        row['fwdBwdMs'] = statistics.median(row['fwdBwdRuns'])
        row['naiveFwdMs'] = None
        if heads * L * L * 4 * 2 <= 40e9:
            with torch.no_grad():
                row['naiveFwdMs'] = statistics.median(time_it(n, lambda: naive(q, k, v)))
    except torch.cuda.OutOfMemoryError as e:  # report, do not hide
        row['error'] = str(e).splitlines()[0]
    torch.cuda.empty_cache()
    rows.append(row)
    print(json.dumps({x: y for x, y in row.items() if not x.endswith('Runs')}), flush=True)

doc = {
    'impl': 'torch-sdpa',
    'device': 'cuda',
    'adapter': {'description': torch.cuda.get_device_name(), 'torch': torch.__version__},
    'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
    'dtype': 'float32',
    'check': {'sdpaVsNaiveRelErr': check_err, 'heads': 4, 'tokens': 1024, 'headDim': dh},
    'attention': rows,
}
print('| heads x tokens x dh | SDPA fwd ms | TFLOP/s | SDPA fwd+bwd ms | naive fwd ms |')
print('|---|---|---|---|---|')
for r in rows:
    f = lambda x, d=1: '—' if x is None else f'{x:.{d}f}'
    print(f"| {r['heads']} x {r['tokens']} x {r['headDim']} | {f(r.get('fwdMs'))} | {f(r.get('fwdTflops'), 2)} | {f(r.get('fwdBwdMs'))} | {f(r.get('naiveFwdMs'))} |")
if a.json:
    with open(a.json, 'w') as fh:
        json.dump(doc, fh, indent=2)
