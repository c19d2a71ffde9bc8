/**
 * A dry run of the WebGPU backend, for planning device memory: tfjs-webgpu's own bookkeeping (its
 * BufferManager and pool, the disposals that wait for a submit, the submits every 64 dispatches, our
 * early submit) runs unchanged, so `deviceMemory()` counts exactly what a real run would allocate, but
 * no buffer holds memory and no command runs. A model at a size this machine could neither hold nor
 * compute (PixArt-XL/2 at 32,400 tokens on SwiftShader) runs in seconds of host time.
 *
 * Reads return zeros (of the right length), so only work whose allocations do not depend on the values
 * it reads is measured faithfully (true of the DiT forwards and training steps). Not counted, as in
 * `deviceMemory()`: Dawn's staging for uploads, pipelines, the driver's rounding. One way only: the
 * backend cannot go back to real work in this process.
 */
import * as tf from '@tensorflow/tfjs-core';

/** What the dry device was asked to do. */
export interface DryRunStats {
  /** Queue submits. */
  submits: number;
  /** Compute dispatches recorded. */
  dispatches: number;
  /** `createBuffer` calls (tfjs allocating anew, not reusing a pooled buffer). */
  createdBuffers: number;
}

/**
 * Device limits the dry run reports instead of the adapter's (ssdScan splits a batch whose chunk
 * states would pass one binding): an H100's under Dawn/Vulkan by default.
 */
export const DRY_RUN_LIMITS: Readonly<Record<string, number>> = Object.freeze({
  maxStorageBufferBindingSize: 2 ** 31 - 4,
  maxBufferSize: 2 ** 40,
});

/**
 * Turns the active webgpu backend into a dry run (see the module comment) and returns its counters,
 * which keep counting. `limits` override `DRY_RUN_LIMITS`. Throws off webgpu.
 */
export function dryRunWebGPU(limits: Readonly<Record<string, number>> = {}): DryRunStats {
  if (tf.getBackend() !== 'webgpu') throw new Error(`dryRunWebGPU needs the webgpu backend, not ${tf.getBackend()}.`);
  const backend = tf.backend() as unknown as { device: GPUDevice; queue: GPUQueue };
  const stats: DryRunStats = { submits: 0, dispatches: 0, createdBuffers: 0 };
  const device = backend.device as unknown as Record<string, unknown>;
  const real = backend.device.limits as unknown as Record<string, number>;
  const lim: Record<string, number> = {};
  for (const k in real) lim[k] = real[k]!;
  Object.assign(lim, DRY_RUN_LIMITS, limits);
  Object.defineProperty(device, 'limits', { value: Object.freeze(lim), configurable: true });
  const BufferClass = (globalThis as unknown as { GPUBuffer: { prototype: object } }).GPUBuffer;
  device.createBuffer = (d: GPUBufferDescriptor) => {
    stats.createdBuffers += 1;
    let state: GPUBufferMapState = d.mappedAtCreation ? 'mapped' : 'unmapped';
    // passes tfjs's `instanceof GPUBuffer`; a mapped range is zeros, at most 1 MiB (readbacks of one element)
    return Object.create(BufferClass.prototype, {
      size: { value: d.size },
      usage: { value: d.usage },
      mapState: { get: () => state },
      destroy: { value: () => {} },
      mapAsync: {
        value: async () => {
          state = 'mapped';
        },
      },
      getMappedRange: { value: () => new ArrayBuffer(Math.min(d.size, 2 ** 20)) },
      unmap: {
        value: () => {
          state = 'unmapped';
        },
      },
    });
  };
  const pass = {
    setPipeline() {},
    setBindGroup() {},
    dispatchWorkgroups() {
      stats.dispatches += 1;
    },
    end() {},
  };
  device.createCommandEncoder = () => ({ beginComputePass: () => pass, copyBufferToBuffer() {}, resolveQuerySet() {}, finish: () => ({}) });
  device.createBindGroup = () => ({});
  device.createShaderModule = () => ({});
  const pipeline = { getBindGroupLayout: () => ({}) };
  device.createComputePipeline = () => pipeline;
  device.createComputePipelineAsync = async () => pipeline;
  device.createQuerySet = () => ({ destroy() {} });
  backend.queue = {
    submit() {
      stats.submits += 1;
    },
    writeBuffer() {},
    onSubmittedWorkDone: async () => {},
  } as unknown as GPUQueue;
  return stats;
}
