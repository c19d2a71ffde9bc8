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
 * - A disposed tensor that a recorded, not yet submitted command uses stays allocated (tfjs keeps it
 *   until the submit), and so cannot be reused either: with 64 dispatches per submit the device holds
 *   up to 64 dispatches' worth of dead activations, and the pool grows to hold the next ones beside
 *   them. So when the pool has no free buffer of the size asked for and more than
 *   `setDeferredFreeLimit` bytes of disposed tensors wait, the recorded commands are submitted first:
 *   the waiting buffers return to the pool, one of them may be reused, and the device grows only when
 *   it must. Measured with every tfjs allocation counted and no command run (a dry run on SwiftShader,
 *   within 1 MiB of a real SwiftShader run at the quick sizes, and equal to the H100's live-tensor
 *   column at the XL sizes): PixArt-XL/2 at 32,400 tokens, one forward after a warm one, peaked at
 *   16.1 GiB without the early submit and 6.2 GiB with the 1 GiB limit (its live tensors: 5.3 GiB); the
 *   T2MD student at 25.6 and 12.1 GiB (live: 7.5 GiB; the rest is the pool's buffers of other sizes).
 *   An early submit costs ~1 ms of host time on the H100 machine, hidden where the GPU's work outlasts
 *   the host's: those forwards submit 29 and 125 times instead of 8 and 15. Triggered by a pool miss
 *   rather than by every disposal, it leaves host-bound small steps alone: a shapes distillation step
 *   submits 19.7 times per step at batch 128 (19.25 without), 24.6 at batch 512 (19.25) and 30.2 at
 *   1024 (19.6); their peaks, set by the activations kept for the backward, hardly
 *   move. `T2MD_DEFERRED_FREE_MB` sets the limit in Node (`Infinity`: tfjs's own submits only).
 * Everything else is tfjs's own. The class is made from the loaded module (the backend module must load
 * after `navigator.gpu` exists in Node), so this file imports it only as a type.
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from './errors.js';

/** Dispatches recorded before tfjs submits its command encoder (see the module comment). */
export const SUBMIT_BATCH = 64;

/** The fields of tfjs-webgpu's per-tensor record this file touches. */
interface TensorData {
  dtype: tf.DataType;
  shape: number[];
  values: ArrayLike<number> | null;
  resource: GPUBuffer | null;
}

/** The internals of tfjs-webgpu 4.22 the overrides rely on (checked before use). */
interface Internals {
  tensorMap: { get(dataId: object): TensorData | undefined };
  bufferManager: { acquireBuffer(size: number, usage: number): GPUBuffer };
  queue: GPUQueue;
}

/** More of them, for recording buffer copies into tfjs's command stream. */
interface EncoderInternals extends Internals {
  uploadToGPU(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  commandEncoder: GPUCommandEncoder;
  commandQueueOwnedIds: WeakSet<object>;
  shouldExecuteOnCPU(inputs: tf.TensorInfo[]): boolean;
}

function hasEncoderInternals(b: unknown): b is EncoderInternals {
  const x = b as Partial<EncoderInternals>;
  return (
    hasInternals(b) &&
    typeof x.uploadToGPU === 'function' &&
    typeof x.makeTensorInfo === 'function' &&
    typeof x.ensureCommandEncoderReady === 'function' &&
    typeof x.endComputePassEncoder === 'function' &&
    typeof x.shouldExecuteOnCPU === 'function' &&
    x.commandQueueOwnedIds instanceof WeakSet
  );
}

/**
 * Copies `bytes` of x's buffer from `offset` into a new tensor of `shape`, recorded in tfjs's command
 * stream like a dispatch (so it runs in order with the programs around it, and x and the output are
 * kept alive until that command buffer is submitted).
 */
function copyOut(b: EncoderInternals, x: tf.TensorInfo, offset: number, shape: number[]): tf.TensorInfo {
  const out = b.makeTensorInfo(shape, x.dtype);
  b.uploadToGPU(out.dataId); // allocates its buffer
  const bytes = 4 * shape.reduce((a, d) => a * d, 1);
  b.ensureCommandEncoderReady();
  b.endComputePassEncoder();
  b.commandEncoder.copyBufferToBuffer(b.tensorMap.get(x.dataId)!.resource!, offset, b.tensorMap.get(out.dataId)!.resource!, 0, bytes);
  b.commandQueueOwnedIds.add(x.dataId);
  b.commandQueueOwnedIds.add(out.dataId);
  return out;
}

/** Whether x is a 4-byte-element tensor already on (or bound for) the GPU, so a buffer copy can serve. */
function copyable(b: EncoderInternals, x: tf.TensorInfo): boolean {
  if (x.dtype !== 'float32' && x.dtype !== 'int32' && x.dtype !== 'bool') return false;
  if (b.shouldExecuteOnCPU([x])) return false; // tfjs keeps small CPU-side tensors on the CPU
  b.uploadToGPU(x.dataId);
  return b.tensorMap.get(x.dataId)?.resource != null;
}

/**
 * The flat offset of a slice when it is one contiguous run of x's elements (leading axes of size 1,
 * then one partial axis, then whole axes), else null.
 */
export function contiguousSliceOffset(shape: readonly number[], begin: readonly number[], size: readonly number[]): number | null {
  let k = 0; // the first axis that is not a singleton of the slice
  while (k < shape.length && size[k] === 1) k++;
  for (let i = k + 1; i < shape.length; i++) if (begin[i] !== 0 || size[i] !== shape[i]) return null;
  let offset = 0;
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    offset += begin[i]! * stride;
    stride *= shape[i]!;
  }
  return offset;
}

/**
 * Slice and SplitV as buffer copies where the pieces are contiguous (a split along the first axis
 * that is not 1, e.g. the optimiser's flat vector back into 163 weights; a row block of a weight): a
 * copy needs no pipeline, bind group or uniforms, where tfjs dispatches a program per piece. Other
 * cases go to tfjs's own kernels.
 */
export function registerCopyKernels(): void {
  for (const name of ['Slice', 'SplitV'] as const) {
    const original = tf.getKernel(name, 'webgpu');
    if (original == null || (original as { t2mdCopy?: boolean }).t2mdCopy) continue;
    const kernelFunc: tf.KernelFunc = (args) => {
      const b = args.backend as unknown;
      const x = (args.inputs as { x: tf.TensorInfo }).x;
      if (!hasEncoderInternals(b) || tf.util.sizeFromShape(x.shape) === 0 || !copyable(b, x)) return original.kernelFunc(args);
      if (name === 'Slice') {
        const attrs = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
        const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, attrs.begin, attrs.size);
        const offset = contiguousSliceOffset(x.shape, begin, size);
        if (offset == null || tf.util.sizeFromShape(size) === 0) return original.kernelFunc(args);
        return copyOut(b, x, 4 * offset, size);
      }
      const attrs = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
      const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0]!;
      if (x.shape.slice(0, axis).some((d) => d !== 1)) return original.kernelFunc(args);
      const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits, axis);
      if (sizes.some((s) => s === 0)) return original.kernelFunc(args);
      const inner = x.shape.slice(axis + 1).reduce((a, d) => a * d, 1);
      let at = 0;
      return sizes.map((s) => {
        const shape = [...x.shape];
        shape[axis] = s;
        const out = copyOut(b, x, 4 * at * inner, shape);
        at += s;
        return out;
      });
    };
    tf.unregisterKernel(name, 'webgpu');
    tf.registerKernel({ ...original, kernelFunc, t2mdCopy: true } as tf.KernelConfig);
  }
}

type BackendClass = new (device: GPUDevice, info?: unknown) => WebGPUBackend;

/** Default of `setDeferredFreeLimit`: 1 GiB (module comment). */
export const DEFERRED_FREE_LIMIT = 2 ** 30;
let limit = DEFERRED_FREE_LIMIT;

/**
 * Applies `T2MD_DEFERRED_FREE_MB` (MiB, ≥ 0, or `Infinity` for tfjs's own submits only) in Node when set. Called by `initBackend` before WebGPU
 * starts, so a bad value is its error rather than a backend factory's (which tfjs would swallow).
 */
export function applyDeferredFreeEnv(): void {
  limit = mibFromEnv('T2MD_DEFERRED_FREE_MB') ?? limit;
}

/** The bytes an environment variable of MiB (≥ 0, or Infinity) asks for, or undefined when unset (Node only). */
function mibFromEnv(name: string): number | undefined {
  const raw = typeof process === 'undefined' ? undefined : process.env?.[name];
  if (raw == null || raw === '') return undefined;
  const mb = Number(raw);
  if (!(mb >= 0)) throw new InputError(`${name} must be a number of MiB ≥ 0 (or Infinity), got '${raw}'.`);
  return mb * 2 ** 20;
}

/**
 * WebGPU: the most bytes of disposed tensors that may wait for the next queue submit while tfjs's pool
 * has no free buffer of a size asked for; past it, the recorded commands are submitted early so that
 * those buffers return to the pool before a new one is allocated (see the module comment). Default
 * `DEFERRED_FREE_LIMIT` (1 GiB). Lower it on a small GPU to trade a little host time (about 1 ms per
 * extra submit on the H100 machine) for a lower peak of device memory; `Infinity` is tfjs's own
 * behaviour (a submit every 64 dispatches only).
 */
export function setDeferredFreeLimit(bytes: number): void {
  if (!(bytes >= 0)) throw new InputError(`the deferred-free limit must be a number of bytes ≥ 0 (or Infinity), got ${bytes}.`);
  limit = bytes;
}

/** The limit `setDeferredFreeLimit` (or `T2MD_DEFERRED_FREE_MB`) set, in bytes; `Infinity` when off. */
export function deferredFreeLimit(): number {
  return limit;
}

/** Default of `setPoolLimit`: no limit (tfjs's own pool, which keeps every freed buffer). */
export const POOL_LIMIT = Number.POSITIVE_INFINITY;
let poolCap = POOL_LIMIT;

/**
 * Applies `T2MD_POOL_MB` (MiB, ≥ 0, or `Infinity`) in Node when set, as `applyDeferredFreeEnv` does for
 * its variable.
 */
export function applyPoolEnv(): void {
  poolCap = mibFromEnv('T2MD_POOL_MB') ?? poolCap;
}

/**
 * WebGPU: the most bytes tfjs's pool may hold in free buffers when it has none of a size asked for;
 * past it, every free buffer is destroyed before the new one is created. tfjs reuses a pooled buffer
 * only for a tensor of exactly its size, so a forward whose layers make tensors of many sizes (the
 * T2MD student: SA and Mamba blocks, each direction's scan) leaves gigabytes of free buffers that no
 * later tensor fits: one student forward at 32,400 tokens peaked at 12.1 GiB of device memory with
 * 8.5 GiB in use (dry run). Default `POOL_LIMIT`: no limit, tfjs's behaviour, since creating buffers
 * again costs host time (`GPUDevice.createBuffer`), which a training step that reuses its sizes should
 * not pay; a long-sequence sampler, or a process that samples at several sizes, may set one (also
 * `T2MD_POOL_MB` in Node). `releaseFreeBuffers()` empties the pool once.
 *
 * Measured on an H100 (Dawn, Vulkan; bench/history/2026-12-07-h100-sixth/issue23): with a 1 GiB limit
 * the student's forward at 16,384 tokens took 2,967 ms against 1,135 ms without, and the device's used
 * memory (nvidia-smi) reached 68.7 GiB, against at most 16.4 GiB over the whole sweep without a limit
 * (batch 2 included). A forward with many sizes destroys and makes
 * buffers at nearly every layer, and a destroyed buffer's memory comes back only once the GPU has done
 * the work queued before it, so on a fast GPU the limit costs time and memory both. There, call
 * `releaseFreeBuffers()` where the sizes change instead.
 */
export function setPoolLimit(bytes: number): void {
  if (!(bytes >= 0)) throw new InputError(`the pool limit must be a number of bytes ≥ 0 (or Infinity), got ${bytes}.`);
  poolCap = bytes;
}

/** The limit `setPoolLimit` (or `T2MD_POOL_MB`) set, in bytes; `Infinity` when off. */
export function poolLimit(): number {
  return poolCap;
}

/** Destroys every free buffer of tfjs's pool (see `releaseFreeBuffers`); returns the bytes freed. */
export function destroyFreeBuffers(bm: SubmitInternals['bufferManager']): number {
  let bytes = 0;
  for (const list of bm.freeBuffers.values()) {
    for (const b of list) {
      bytes += b.size;
      b.destroy();
    }
    list.length = 0;
  }
  bm.numFreeBuffers = 0;
  bm.numBytesAllocated -= bytes;
  return bytes;
}

/** The fields of tfjs-webgpu 4.22's backend and BufferManager the early submit reads (checked before use). */
interface SubmitInternals {
  tensorMap: { get(dataId: object): TensorData | undefined };
  tensorDataPendingDisposal: object[];
  commandEncoder: GPUCommandEncoder | null;
  activeTimers: unknown;
  endComputePassEncoder(): void;
  submitQueue(): void;
  bufferManager: {
    /** Free buffers by `${size}_${usage}` (tfjs's key). */
    freeBuffers: Map<string, GPUBuffer[]>;
    numFreeBuffers: number;
    /** Bytes of every buffer it created and has not destroyed, and of those in use (not in the pool). */
    numBytesAllocated: number;
    numBytesUsed: number;
    acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): GPUBuffer;
  };
}

function hasSubmitInternals(b: unknown): b is SubmitInternals {
  const x = b as Partial<SubmitInternals>;
  return (
    typeof x.tensorMap?.get === 'function' &&
    Array.isArray(x.tensorDataPendingDisposal) &&
    typeof x.endComputePassEncoder === 'function' &&
    typeof x.submitQueue === 'function' &&
    x.bufferManager?.freeBuffers instanceof Map &&
    typeof x.bufferManager.acquireBuffer === 'function'
  );
}

/** Whether a backend instance has the internals `uploadToGPU` below needs (tfjs 4.22's layout). */
function hasInternals(b: unknown): b is Internals {
  const x = b as Partial<Internals>;
  return typeof x.tensorMap?.get === 'function' && typeof x.bufferManager?.acquireBuffer === 'function' && x.queue != null;
}

/** A subclass of tfjs's `WebGPUBackend` with the upload above; falls back to tfjs's own path when unsure. */
export function tunedWebGPUBackend(Base: BackendClass): BackendClass {
  const proto = Base.prototype as unknown as { uploadToGPU?: (dataId: object) => void };
  if (typeof proto.uploadToGPU !== 'function') return Base;
  const baseProto = Base.prototype as unknown as { disposeData(dataId: object, force?: boolean): boolean; submitQueue?: () => void };
  if (typeof baseProto.disposeData !== 'function' || typeof baseProto.submitQueue !== 'function') return Base;
  class T2mdWebGPUBackend extends (Base as unknown as new (device: GPUDevice, info?: unknown) => object) {
    /** Bytes of disposed tensors waiting for the next submit (tfjs's tensorDataPendingDisposal). */
    private pendingFreeBytes = 0;
    /** Whether tfjs's internals have the shape the early submit relies on (decided once, here). */
    private readonly tracked: boolean;

    constructor(device: GPUDevice, info?: unknown) {
      super(device, info);
      const self = this as unknown;
      this.tracked = hasSubmitInternals(self);
      if (!hasSubmitInternals(self)) return;
      // Before the pool allocates anew: submit first when enough dead buffers wait (module comment).
      const bm = self.bufferManager;
      const acquire = bm.acquireBuffer;
      const miss = (size: number, usage: number) => !((bm.freeBuffers.get(`${size}_${usage}`)?.length ?? 0) > 0);
      bm.acquireBuffer = (size, usage, mappedAtCreation = false, reuse = true) => {
        if (
          this.pendingFreeBytes > limit &&
          reuse &&
          self.commandEncoder != null &&
          self.activeTimers == null && // not while profiling: tfjs times each program in its own pass and submits at its query
          miss(size, usage)
        ) {
          self.endComputePassEncoder();
          self.submitQueue();
        }
        // still no buffer of this size: with a pool limit, free the pool's buffers of other sizes first
        // (setPoolLimit). Destroying a buffer that submitted work still reads is valid WebGPU: the memory
        // goes once that work is done.
        if (poolCap < Number.POSITIVE_INFINITY && bm.numBytesAllocated - bm.numBytesUsed > poolCap && miss(size, usage)) {
          destroyFreeBuffers(bm);
        }
        return acquire.call(bm, size, usage, mappedAtCreation, reuse);
      };
    }

    disposeData(dataId: object, force?: boolean): boolean {
      if (!this.tracked) return baseProto.disposeData.call(this, dataId, force);
      const self = this as unknown as SubmitInternals;
      const waiting = self.tensorDataPendingDisposal.length;
      const done = baseProto.disposeData.call(this, dataId, force);
      if (self.tensorDataPendingDisposal.length > waiting) {
        this.pendingFreeBytes += self.tensorMap.get(dataId)?.resource?.size ?? 0;
      }
      return done;
    }

    submitQueue(): void {
      baseProto.submitQueue!.call(this);
      this.pendingFreeBytes = 0;
    }

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
