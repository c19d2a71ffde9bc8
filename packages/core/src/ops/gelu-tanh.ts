import { engine, type NamedAttrMap, type Tensor } from '@tensorflow/tfjs-core';
import { assertFloat } from '../assert.js';
import { type ElementwiseLayout, resolveElementwiseLayout } from '../kernel/elementwise-config.js';
import { registerKernelsOnce } from '../kernel/register.js';
import { GELU_TANH, geluTanhGrad, geluTanhKernels } from './gelu-tanh-kernels.js';

/** Registers the GELU kernels for cpu, wasm and webgpu and their gradient (idempotent). */
export function registerCoreKernels(): void {
  registerKernelsOnce(geluTanhKernels, [geluTanhGrad]);
}

/**
 * GELU with the tanh approximation (PyTorch's `gelu(approximate='tanh')`, used by DiT's MLP), as one
 * fused kernel on every backend, differentiable.
 * @param x any shape, float32
 * @param opts.layout how the WebGPU program is laid out ('auto' = the measured defaults); benchmarks
 *   compare layouts through it, other backends ignore it
 */
export function geluTanh(x: Tensor, opts: { layout?: ElementwiseLayout } = {}): Tensor {
  assertFloat('x', x);
  const layout = resolveElementwiseLayout(opts.layout);
  registerCoreKernels();
  return engine().runKernel(GELU_TANH, { x }, { ...layout } as unknown as NamedAttrMap) as Tensor;
}
