/**
 * tfjs-backend-webgpu 4.22's backend with a cheaper host path for training loops, whose every step
 * dispatches ~2,000 small programs and uploads hundreds of small tensors (the batch, timesteps, and
 * every JavaScript number an op turns into a scalar tensor). Seen on the H200 machine (Node, Dawn,
 * Vulkan under gVisor), one shapes-teacher step at batch 128 spent 67 ms of its ~300 ms of host time in
 * `GPUDevice.createBuffer`: tfjs uploads each tensor through a staging buffer created (and destroyed)
 * for that one copy.
 *
 * - `uploadToGPU` writes through `queue.writeBuffer` into a pooled buffer instead. Ordering: a
 *   `writeBuffer` runs on the queue before any later submit, so before the commands (recorded after it)
 *   that read the tensor; and tfjs returns a buffer to its pool only after the commands that used it were
 *   submitted, so nothing still queued reads a reused buffer after the write.
 * - Dispatches per queue submit (tfjs's `WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE`, 15 by default) go to 64:
 *   a submit costs ~1 ms of host time there; 15 → 64 took a batch-512 step from 525 to 393 ms.
 * Everything else is tfjs's own. The class is made from the loaded module (the backend module must load
 * after `navigator.gpu` exists in Node), so this file imports it only as a type.
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import * as tf from '@tensorflow/tfjs-core';

/** Dispatches recorded before tfjs submits its command encoder (see the module comment). */
export const SUBMIT_BATCH = 64;

/** The fields of tfjs-webgpu's per-tensor record this file touches. */
interface TensorData {
  dtype: tf.DataType;
  shape: number[];
  values: ArrayLike<number> | null;
  resource: GPUBuffer | null;
}

/** The internals of tfjs-webgpu 4.22 the override relies on (checked before use). */
interface Internals {
  tensorMap: { get(dataId: object): TensorData | undefined };
  bufferManager: { acquireBuffer(size: number, usage: number): GPUBuffer };
  queue: GPUQueue;
}

type BackendClass = new (device: GPUDevice, info?: unknown) => WebGPUBackend;

/** Whether a backend instance has the internals `uploadToGPU` below needs (tfjs 4.22's layout). */
function hasInternals(b: unknown): b is Internals {
  const x = b as Partial<Internals>;
  return typeof x.tensorMap?.get === 'function' && typeof x.bufferManager?.acquireBuffer === 'function' && x.queue != null;
}

/** A subclass of tfjs's `WebGPUBackend` with the upload above; falls back to tfjs's own path when unsure. */
export function tunedWebGPUBackend(Base: BackendClass): BackendClass {
  const proto = Base.prototype as unknown as { uploadToGPU?: (dataId: object) => void };
  if (typeof proto.uploadToGPU !== 'function') return Base;
  class T2mdWebGPUBackend extends (Base as unknown as new (device: GPUDevice, info?: unknown) => object) {
    uploadToGPU(dataId: object): void {
      const self = this as unknown;
      const data = hasInternals(self) ? self.tensorMap.get(dataId) : undefined;
      const base = proto.uploadToGPU!;
      const typed = hasInternals(self) && data != null && data.resource == null && data.values != null ? uploadView(data) : null;
      if (!hasInternals(self) || data == null || typed == null || typed.byteLength === 0) {
        base.call(this, dataId);
        return;
      }
      const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
      const buffer = self.bufferManager.acquireBuffer(typed.byteLength, usage);
      self.queue.writeBuffer(buffer, 0, typed as Float32Array<ArrayBuffer>);
      data.values = null; // uploaded: tfjs keeps no CPU copy either
      data.resource = buffer;
    }
  }
  return T2mdWebGPUBackend as unknown as BackendClass;
}

/** The tensor's values as the 4-byte elements the GPU buffer holds, or null for a dtype left to tfjs. */
function uploadView(data: TensorData): Float32Array | Int32Array | null {
  const v = data.values!;
  if (data.dtype === 'float32') return v instanceof Float32Array ? v : Float32Array.from(v);
  if (data.dtype === 'int32' || data.dtype === 'bool') return v instanceof Int32Array ? v : Int32Array.from(v);
  return null;
}

/** Applies the submit batch (a tfjs flag, global to the process). */
export function tuneWebGPUFlags(): void {
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', SUBMIT_BATCH);
}
