import {
  type GradConfig,
  getGradient,
  getKernel,
  type KernelConfig,
  type KernelFunc,
  registerGradient,
  registerKernel,
} from '@tensorflow/tfjs-core';

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

/**
 * The configs of one kernel on the three backends the project supports: `host` (a JavaScript
 * implementation, e.g. from `typedArrayKernel`, which both cpu and wasm run) and `webgpu`.
 */
export function onEveryBackend(kernelName: string, host: (config: never) => unknown, webgpu: KernelFunc): KernelConfig[] {
  const js = host as unknown as KernelFunc;
  return [
    { kernelName, backendName: 'cpu', kernelFunc: js },
    { kernelName, backendName: 'wasm', kernelFunc: js },
    { kernelName, backendName: 'webgpu', kernelFunc: webgpu },
  ];
}
