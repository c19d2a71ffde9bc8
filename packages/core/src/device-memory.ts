/**
 * What tfjs-webgpu really holds on the device, as opposed to `tf.memory().numBytes` (the bytes of live
 * tensors). tfjs 4.22's `BufferManager` returns every released buffer to a pool keyed by (size, usage)
 * and never destroys one: a process that ran a large shape once keeps that shape's whole working set,
 * and one that steps through sizes keeps every size's (seen on the H100: 8–13 GB of live tensors at
 * 32,400 tokens, yet the 80 GB card ran out; tfjs-backend-webgpu's `numBytesAllocated` counted the pool).
 *
 * `allocatedBytes` is the BufferManager's `numBytesAllocated`: every GPUBuffer tfjs created and has not
 * destroyed, in use or pooled. That includes tensor storage, the uniform buffers of every dispatch
 * (pooled like the rest), the MAP_READ staging buffers of readbacks (pooled), and, while a submit is
 * pending, the MAP_WRITE staging buffers of uploads. It misses what tfjs does not create through its
 * BufferManager: Dawn's own staging ring behind `queue.writeBuffer` (our upload path, webgpu-backend.ts,
 * as large as the largest upload while it is pending), timestamp query sets, textures (unused here),
 * pipelines and shader modules, and the driver's rounding of each allocation (alignment, and Vulkan
 * sub-allocation blocks). So it is a floor of the device's memory, exact for tensors and the pool.
 */
import * as tf from '@tensorflow/tfjs-core';
import { destroyFreeBuffers } from './webgpu-backend.js';

/** The fields of tfjs-webgpu 4.22's BufferManager read and written here (checked before use). */
interface BufferManagerLike {
  freeBuffers: Map<string, GPUBuffer[]>;
  numFreeBuffers: number;
  numBytesUsed: number;
  numBytesAllocated: number;
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): GPUBuffer;
}

/** Bytes tfjs-webgpu holds on the device (see the module comment for what they include and miss). */
export interface DeviceMemory {
  /** Every buffer tfjs created and has not destroyed: in use plus pooled. */
  allocatedBytes: number;
  /** Buffers in use (tensors, and uniforms and staging buffers of work not yet submitted). */
  inUseBytes: number;
  /** Released buffers kept in tfjs's free pool for reuse (`allocatedBytes - inUseBytes`). */
  poolBytes: number;
  /** The most `allocatedBytes` reached since the backend started or `resetDevicePeak()`. */
  peakBytes: number;
}

const WATCHED = Symbol('t2md.deviceBytesWatched');
let peak = 0;

function bufferManager(): BufferManagerLike | undefined {
  if (tf.getBackend() !== 'webgpu') return undefined;
  const bm = (tf.backend() as unknown as { bufferManager?: Partial<BufferManagerLike> }).bufferManager;
  const ok =
    bm != null &&
    bm.freeBuffers instanceof Map &&
    typeof bm.numBytesAllocated === 'number' &&
    typeof bm.numBytesUsed === 'number' &&
    typeof bm.acquireBuffer === 'function';
  return ok ? (bm as BufferManagerLike) : undefined;
}

/**
 * Keeps the high-water mark of `numBytesAllocated`: it grows only when tfjs creates a buffer, and every
 * buffer it creates goes through `acquireBuffer`, so checking there after each call makes the peak exact
 * (a sample after each kernel would also see it, but not between an op's own allocations). Idempotent;
 * initBackend calls it when the webgpu backend starts, and every reader here calls it too.
 */
export function watchDeviceBytes(): BufferManagerLike | undefined {
  const bm = bufferManager();
  if (bm == null) return undefined;
  const b = bm as BufferManagerLike & { [WATCHED]?: true };
  if (b[WATCHED]) return bm;
  const acquire = bm.acquireBuffer;
  b.acquireBuffer = function (this: BufferManagerLike, ...args: Parameters<BufferManagerLike['acquireBuffer']>) {
    const buffer = acquire.apply(this, args);
    if (this.numBytesAllocated > peak) peak = this.numBytesAllocated;
    return buffer;
  };
  b[WATCHED] = true;
  peak = Math.max(peak, bm.numBytesAllocated);
  return bm;
}

/** What tfjs-webgpu holds on the device now, and its peak; null off webgpu (or on an unknown tfjs layout). */
export function deviceMemory(): DeviceMemory | null {
  const bm = watchDeviceBytes();
  if (bm == null) return null;
  const allocated = bm.numBytesAllocated;
  return {
    allocatedBytes: allocated,
    inUseBytes: bm.numBytesUsed,
    poolBytes: allocated - bm.numBytesUsed,
    peakBytes: Math.max(peak, allocated),
  };
}

/** Starts a new peak at what is allocated now (e.g. at the start of a benchmark point, after `releaseFreeBuffers`). */
export function resetDevicePeak(): void {
  const bm = watchDeviceBytes();
  peak = bm?.numBytesAllocated ?? 0;
}

/**
 * Destroys the buffers tfjs's pool holds free, so a process that moves on to other tensor sizes (a
 * benchmark stepping through batch sizes, a server sampling at several resolutions) does not keep the
 * old sizes' memory. Buffers in use are untouched. Safe while GPU work is still queued: WebGPU defers
 * the memory's release until the commands that use a destroyed buffer have run (and tfjs returns a
 * buffer to its pool only after the commands that used it were submitted). The next call at a shape
 * creates its buffers again (`GPUDevice.createBuffer`, a host cost: see webgpu-backend.ts), so call it
 * where sizes change, not every step. Returns the bytes freed (0 off webgpu).
 */
export function releaseFreeBuffers(): number {
  const bm = watchDeviceBytes();
  if (bm == null) return 0;
  return destroyFreeBuffers(bm as unknown as Parameters<typeof destroyFreeBuffers>[0]);
}

/**
 * Submits the commands tfjs has recorded but not yet submitted (it batches dispatches per submit) and
 * waits until the GPU has run everything submitted: afterwards every WebGPU error of that work has been
 * reported (`takeWebGPUErrors`), and the buffers of tensors disposed meanwhile are back in the pool. A
 * no-op off webgpu.
 */
export async function webgpuIdle(): Promise<void> {
  if (tf.getBackend() !== 'webgpu') return;
  const b = tf.backend() as unknown as {
    ensureCommandEncoderReady?: () => void;
    endComputePassEncoder?: () => void;
    submitQueue?: () => void;
    queue?: GPUQueue;
  };
  if (typeof b.submitQueue === 'function' && typeof b.ensureCommandEncoderReady === 'function') {
    b.ensureCommandEncoderReady();
    b.endComputePassEncoder?.();
    b.submitQueue();
  }
  await b.queue?.onSubmittedWorkDone();
}
