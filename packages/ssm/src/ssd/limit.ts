import { backend, getBackend } from '@tensorflow/tfjs-core';

let override: number | null = null;

/**
 * Test-only: pretend one storage binding holds at most `bytes` (on every backend, so the batch split
 * runs on cpu and wasm too), or restore the adapter's limit with null. Not exported from the package.
 */
export function setSsdBindingLimitForTests(bytes: number | null): void {
  override = bytes;
}

/** The largest buffer one kernel call may bind: the override, the WebGPU adapter's limit, else unbounded. */
export function ssdBindingLimit(): number {
  if (override != null) return override;
  if (getBackend() !== 'webgpu') return Number.POSITIVE_INFINITY;
  const device = (backend() as unknown as { device?: { limits: { maxStorageBufferBindingSize: number } } }).device;
  return device?.limits.maxStorageBufferBindingSize ?? 2 ** 31 - 4;
}
