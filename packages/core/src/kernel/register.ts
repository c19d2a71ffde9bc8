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
 * implementation, e.g. from `typedArrayKernel` or one built on `HostOps`, which cpu runs, and wasm too
 * unless `wasm` is given) and `webgpu`. A separate `wasm` serves an op whose fused loop is the best
 * form on cpu (whose kernels are loops too) while wasm is faster on a composition of its XNNPACK kernels.
 */
export function onEveryBackend(
  kernelName: string,
  host: (config: never) => unknown,
  webgpu: KernelFunc,
  wasm: (config: never) => unknown = host,
): KernelConfig[] {
  return [
    { kernelName, backendName: 'cpu', kernelFunc: host as unknown as KernelFunc },
    { kernelName, backendName: 'wasm', kernelFunc: wasm as unknown as KernelFunc },
    { kernelName, backendName: 'webgpu', kernelFunc: webgpu },
  ];
}
