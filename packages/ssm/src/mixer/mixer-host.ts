/**
 * The Mamba-2 mixer's fused elementwise kernels on wasm as compositions of its own kernels (XNNPACK:
 * SIMD, and threaded where it parallelises), several times faster than a float64 loop with an exp per
 * element. Their plain loops (conv1d.ts, gated-norm.ts) are the references, cpu's kernels, and still
 * the backward kernels. Intermediates are freed as soon as they are used (the mixer's peak memory).
 */
import { HostOps } from '@t2md/core';
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';

/**
 * silu(causal depthwise conv): x `[B, L, C]`, w `[C, 1, K]`, bias `[C]` → `[B, L, C]`, as one
 * depthwise conv over a `[B, L, 1, C]` image with a `[K, 1]` filter padded K − 1 rows at the top (the
 * causal window), then x·σ(x).
 */
export function causalConv1dSiluHost(backend: KernelBackend, x: TensorInfo, w: TensorInfo, bias: TensorInfo): TensorInfo {
  const ops = new HostOps(backend);
  try {
    const [B, L, C] = x.shape as [number, number, number];
    const K = w.shape[2]!;
    if (x.shape.some((s) => s === 0)) return ops.keep(ops.tensor(x.shape)); // XNNPACK divides by the sizes
    const filter = ops.reshape(ops.transpose(ops.reshape(w, [C, K]), [1, 0]), [K, 1, C, 1]); // [K, 1, C, 1]
    const pre = ops.call(
      'FusedDepthwiseConv2D',
      { x: ops.reshape(x, [B, L, 1, C]), filter, bias },
      {
        strides: [1, 1],
        pad: [
          [0, 0],
          [K - 1, 0],
          [0, 0],
          [0, 0],
        ],
        dilations: [1, 1],
        dataFormat: 'NHWC',
        activation: 'linear',
      },
    ); // [B, L, 1, C]
    const sig = ops.call('Sigmoid', { x: pre });
    const y = ops.call('Multiply', { a: pre, b: sig });
    ops.free(pre, sig);
    return ops.keep(ops.reshape(y, [B, L, C]));
  } finally {
    ops.dispose();
  }
}

/**
 * g / sqrt(mean(g²) + eps) with g = y·silu(z), the mean over the last axis: y, z `[R, S]`, or y
 * `[M, k, J, S]` with z `[M, 1, J, S]` broadcast over k (a shared gate: its sigmoid taken once, the
 * products the same float32 products as with z repeated).
 */
export function gatedNormHost(backend: KernelBackend, y: TensorInfo, z: TensorInfo, eps: number): TensorInfo {
  const ops = new HostOps(backend);
  try {
    if (y.shape.some((s) => s === 0)) return ops.keep(ops.tensor(y.shape));
    const [yz, sz] = [ops.call('Multiply', { a: y, b: z }), ops.call('Sigmoid', { x: z })];
    const g = ops.call('Multiply', { a: yz, b: sz }); // [R, S]
    ops.free(yz, sz);
    const g2 = ops.call('Square', { x: g });
    const ms = ops.call('Mean', { x: g2 }, { axis: [y.shape.length - 1], keepDims: true }); // [..., 1]
    ops.free(g2);
    const r = ops.call('Rsqrt', { x: ops.call('Add', { a: ms, b: ops.tensor([], Float32Array.of(eps)) }) });
    return ops.keep(ops.call('Multiply', { a: g, b: r }));
  } finally {
    ops.dispose();
  }
}
