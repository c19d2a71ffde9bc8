import { engine, type Tensor } from '@tensorflow/tfjs-core';
import { assertFloat } from '../assert.js';
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
 */
export function geluTanh(x: Tensor): Tensor {
  assertFloat('x', x);
  registerCoreKernels();
  return engine().runKernel(GELU_TANH, { x }) as Tensor;
}
