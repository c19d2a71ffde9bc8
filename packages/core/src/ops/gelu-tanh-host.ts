/**
 * GELU(tanh) on wasm as a composition of the backend's own kernels: with
 * 2u = x·(2c + 2ck·x²) (c = √(2/π), k = 0.044715), y = x·σ(2u), the form that avoids the cancellation
 * of 1 + tanh(u) (gelu-tanh-kernels.ts). On wasm each step is one XNNPACK/SIMD pass (Sigmoid runs on
 * every thread): six passes cost about a tenth of the float64 loop, which spends ~25 ns per element
 * in Math.exp.
 */
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';
import { HostOps } from '../kernel/host-ops.js';

const C = Math.sqrt(2 / Math.PI);
const K = 0.044715;

/** 2u = x·(2c + 2ck·x²) and x² (the gradient reuses it). */
function twoU(ops: HostOps, x: TensorInfo): { arg: TensorInfo; x2: TensorInfo } {
  const x2 = ops.call('Square', { x });
  const poly = ops.call('Add', {
    a: ops.call('Multiply', { a: x2, b: ops.tensor([], Float32Array.of(2 * C * K)) }),
    b: ops.tensor([], Float32Array.of(2 * C)),
  });
  return { arg: ops.call('Multiply', { a: poly, b: x }), x2 };
}

/** y = x·σ(2u), x any shape. */
export function geluTanhHost(backend: KernelBackend, x: TensorInfo): TensorInfo {
  const ops = new HostOps(backend);
  try {
    const { arg } = twoU(ops, x);
    return ops.keep(ops.call('Multiply', { a: x, b: ops.call('Sigmoid', { x: arg }) }));
  } finally {
    ops.dispose();
  }
}

/** dx = dy·(s + x·s·(1 − s)·2c(1 + 3k·x²)), s = σ(2u), with 1 − s taken as σ(−2u) (no cancellation for large x). */
export function geluTanhGradHost(backend: KernelBackend, dy: TensorInfo, x: TensorInfo): TensorInfo {
  const ops = new HostOps(backend);
  try {
    const { arg, x2 } = twoU(ops, x);
    const s = ops.call('Sigmoid', { x: arg });
    const sc = ops.call('Sigmoid', { x: ops.call('Neg', { x: arg }) });
    const dArg = ops.call('Add', {
      a: ops.call('Multiply', { a: x2, b: ops.tensor([], Float32Array.of(6 * C * K)) }),
      b: ops.tensor([], Float32Array.of(2 * C)),
    }); // d(2u)/dx
    const term = ops.call('Multiply', { a: ops.call('Multiply', { a: ops.call('Multiply', { a: x, b: s }), b: sc }), b: dArg });
    return ops.keep(ops.call('Multiply', { a: dy, b: ops.call('Add', { a: s, b: term }) }));
  } finally {
    ops.dispose();
  }
}
