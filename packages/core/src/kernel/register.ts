import { type GradConfig, getGradient, getKernel, type KernelConfig, registerGradient, registerKernel } from '@tensorflow/tfjs-core';

/**
 * Registers kernels and gradients unless they already are: packages call their `registerXKernels()`
 * once from their ops (idempotent), never as a hidden import side effect a bundler could drop.
 */
export function registerKernelsOnce(kernels: readonly KernelConfig[], grads: readonly GradConfig[] = []): void {
  for (const k of kernels) {
    if (getKernel(k.kernelName, k.backendName) == null) registerKernel(k);
  }
  for (const g of grads) {
    if (getGradient(g.kernelName) == null) registerGradient(g);
  }
}
