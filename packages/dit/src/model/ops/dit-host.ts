/**
 * The adaLN block's fused elementwise kernels on wasm as compositions of its own kernels (XNNPACK:
 * SIMD, and threaded where it parallelises), as the mixer's are (@t2md/ssm mixer-host.ts). A float64
 * loop over a `[32, 256, 128]` activation runs at 3–8 ns per element on a 2-core CPU; each pass of a
 * wasm kernel at 0.2–0.6 ns. Their plain loops (`adaNormValues`, `gatedAddValues`) stay the
 * references and cpu's kernels; the results differ from them only by float32 rounding (each op rounds
 * where the loop rounds once; see host-loops.test.ts for the tolerances). Intermediates are freed as
 * soon as they are used (the block's peak memory).
 */
import { HostOps } from '@t2md/core';
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';

/**
 * (x − μ)/√(σ² + eps) · (1 + ada[:, scaleIdx]) + ada[:, shiftIdx], μ and σ² over the last axis:
 * x `[N, T, D]`, ada `[N, K, D]` → `[N, T, D]`. Nine passes over x (three means, two centrings, a
 * square, the normalisation and the modulation's product and sum).
 */
export function adaNormHost(
  backend: KernelBackend,
  x: TensorInfo,
  ada: TensorInfo,
  a: { shiftIdx: number; scaleIdx: number; eps: number },
): TensorInfo {
  const ops = new HostOps(backend);
  try {
    const [N, , D] = x.shape as [number, number, number];
    if (x.shape.some((s) => s === 0)) return ops.keep(ops.tensor(x.shape)); // XNNPACK divides by the sizes
    const xc = centred(ops, x); // [N, T, D]
    const sq = ops.call('Square', { x: xc });
    const v = ops.call('Mean', { x: sq }, { axis: [2], keepDims: true }); // [N, T, 1]
    ops.free(sq);
    const rstd = ops.call('Rsqrt', { x: ops.call('Add', { a: v, b: ops.tensor([], Float32Array.of(a.eps)) }) }); // [N, T, 1]
    const xhat = ops.call('Multiply', { a: xc, b: rstd });
    ops.free(xc);
    const one = ops.tensor([], Float32Array.of(1));
    const scale = ops.call('Add', { a: ops.slice(ada, [0, a.scaleIdx, 0], [N, 1, D]), b: one }); // [N, 1, D]
    const xs = ops.call('Multiply', { a: xhat, b: scale });
    ops.free(xhat);
    return ops.keep(ops.call('Add', { a: xs, b: ops.slice(ada, [0, a.shiftIdx, 0], [N, 1, D]) })); // [N, T, D]
  } finally {
    ops.dispose();
  }
}

/**
 * x − mean(x) over the last axis, the mean corrected once: XNNPACK's float32 mean of a row whose
 * spread is small against its mean is off by several roundings of the mean, which the normalisation
 * divides by the spread (the relative error of the norm reached 2e-6 on rows of spread 0.05 around
 * means up to 3; op-accuracy.test.ts allows 1e-6). x − m₁ is exact there (Sterbenz), so the mean of
 * the residual is the error of m₁, taken with the residual's much smaller rounding.
 */
function centred(ops: HostOps, x: TensorInfo): TensorInfo {
  const axis = [x.shape.length - 1];
  const m1 = ops.call('Mean', { x }, { axis, keepDims: true });
  const r = ops.call('Sub', { a: x, b: m1 });
  ops.free(m1);
  const m2 = ops.call('Mean', { x: r }, { axis, keepDims: true });
  const xc = ops.call('Sub', { a: r, b: m2 });
  ops.free(r, m2);
  return xc;
}

/** x + ada[:, gateIdx] · m: x, m `[N, T, D]`, ada `[N, K, D]` → `[N, T, D]` (two passes). */
export function gatedAddHost(backend: KernelBackend, x: TensorInfo, m: TensorInfo, ada: TensorInfo, gateIdx: number): TensorInfo {
  const ops = new HostOps(backend);
  try {
    const [N, , D] = x.shape as [number, number, number];
    if (x.shape.some((s) => s === 0)) return ops.keep(ops.tensor(x.shape));
    const gm = ops.call('Multiply', { a: m, b: ops.slice(ada, [0, gateIdx, 0], [N, 1, D]) }); // [N, T, D]
    return ops.keep(ops.call('Add', { a: x, b: gm }));
  } finally {
    ops.dispose();
  }
}
