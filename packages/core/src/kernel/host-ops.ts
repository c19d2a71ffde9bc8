/**
 * Kernels of the cpu and wasm backends called from inside one of our kernels, on `TensorInfo`s.
 *
 * A custom kernel for cpu/wasm written as a plain JavaScript loop runs at a few hundred MFLOP/s; the
 * wasm backend's own kernels run XNNPACK (a batch-1 `BatchMatMul` without transposes reaches tens of
 * GFLOP/s, on every thread). `HostOps` lets a kernel compose them: each call goes straight to the
 * backend's registered kernel function (no engine bookkeeping, no tape, no profile entry of its own),
 * every intermediate is tracked, and `dispose()` frees all but the ones `keep` marked as outputs.
 */
import { type DataType, getKernel, type KernelBackend, type NamedAttrMap, type TensorInfo, util } from '@tensorflow/tfjs-core';

/** What HostOps and typedArrayKernel use of tfjs's cpu backend (not in its public types). */
export interface CpuLike {
  readSync(dataId: object): ArrayLike<number>;
  makeTensorInfo(shape: number[], dtype: DataType, values?: Float32Array | Int32Array): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}
/** What they use of tfjs's wasm backend: tensors live on its heap. */
export interface WasmLike extends CpuLike {
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
}

/** 'wasm' when `backend` is tfjs's wasm backend, else 'cpu'. */
export function hostBackendName(backend: KernelBackend): 'wasm' | 'cpu' {
  return typeof (backend as unknown as WasmLike).typedArrayFromHeap === 'function' ? 'wasm' : 'cpu';
}

export class HostOps {
  readonly kind: 'wasm' | 'cpu';
  private readonly made: TensorInfo[] = [];
  private readonly kept = new Set<TensorInfo>();

  constructor(readonly backend: KernelBackend) {
    this.kind = hostBackendName(backend);
  }

  /** Runs the backend's kernel `name` (one output) and tracks its output. */
  call(name: string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown> = {}): TensorInfo {
    const out = this.kernel(name)({ inputs, backend: this.backend, attrs: attrs as NamedAttrMap });
    if (Array.isArray(out)) throw new Error(`HostOps.call: ${name} has ${out.length} outputs`);
    return this.track(out as TensorInfo);
  }

  /** `x` viewed with another shape (no copy). */
  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.call('Reshape', { x }, { shape });
  }

  /** `a @ b` for `[M, K]` × `[K, N]` (or `[1, M, K]` × `[1, K, N]`): on wasm, XNNPACK's fast path. */
  matMul(a: TensorInfo, b: TensorInfo): TensorInfo {
    const a3 = a.shape.length === 2 ? this.reshape(a, [1, ...a.shape]) : a;
    const b3 = b.shape.length === 2 ? this.reshape(b, [1, ...b.shape]) : b;
    return this.call('BatchMatMul', { a: a3, b: b3 }, { transposeA: false, transposeB: false });
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.call('Transpose', { x }, { perm });
  }

  /**
   * `x[begin : begin + size]` (float32, any rank) as a new tensor, copied run by run of the last axis.
   * tfjs-backend-wasm's own Slice starts with readSync, which copies all of x: slicing a head out of a
   * `[B, H, L, D]` tensor cost O(B·H·L·D) each time, so a loop over heads was quadratic in the batch.
   */
  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    const out = this.empty(size);
    const [src, dst] = [this.values(x), this.values(out)]; // after the allocation
    const rank = x.shape.length;
    if (rank === 0) {
      dst[0] = src[0]!;
      return out;
    }
    const strides = new Array<number>(rank).fill(1);
    for (let d = rank - 2; d >= 0; d--) strides[d] = strides[d + 1]! * x.shape[d + 1]!;
    // axes after k are taken whole, so one run spans axis k's slice: a head of [B, H, L, D] is one
    // copy, not L copies of D floats (a copy call per 32 floats cost more than the floats)
    let k = rank - 1;
    while (k > 0 && size[k] === x.shape[k]) k--;
    const run = size[k]! * strides[k]!;
    const runs = util.sizeFromShape(size) / Math.max(1, run);
    const at = new Array<number>(k).fill(0); // index of the current run, over the axes before k
    for (let r = 0; r < runs; r++) {
      let from = begin[k]! * strides[k]!;
      for (let d = 0; d < k; d++) from += (begin[d]! + at[d]!) * strides[d]!;
      dst.set(src.subarray(from, from + run), r * run);
      for (let d = k - 1; d >= 0; d--) {
        if (++at[d]! < size[d]!) break;
        at[d] = 0;
      }
    }
    return out;
  }

  /** A new float32 tensor, filled with `values` when given (zeros otherwise). */
  tensor(shape: number[], values?: Float32Array): TensorInfo {
    const n = util.sizeFromShape(shape);
    if (this.kind === 'wasm') {
      const t = (this.backend as unknown as WasmLike).makeOutput(shape, 'float32');
      const view = (this.backend as unknown as WasmLike).typedArrayFromHeap(t) as Float32Array;
      if (values != null) view.set(values.subarray(0, n));
      else view.fill(0);
      return this.track(t);
    }
    return this.track((this.backend as unknown as CpuLike).makeTensorInfo(shape, 'float32', values ?? new Float32Array(n)));
  }

  /** A new float32 tensor whose values the caller writes in full (not zeroed on wasm). */
  empty(shape: number[]): TensorInfo {
    if (this.kind === 'wasm') return this.track((this.backend as unknown as WasmLike).makeOutput(shape, 'float32'));
    return this.tensor(shape);
  }

  /**
   * The values of `x` in place: a view of the wasm heap (valid until the next allocation, which may
   * grow and move the heap) or the cpu backend's own array. Writing to it writes the tensor.
   */
  values(x: TensorInfo): Float32Array {
    if (this.kind === 'wasm') return (this.backend as unknown as WasmLike).typedArrayFromHeap(x) as Float32Array;
    const v = (this.backend as unknown as CpuLike).readSync(x.dataId);
    if (!(v instanceof Float32Array)) throw new Error(`HostOps.values: ${x.dtype} tensor`);
    return v;
  }

  /**
   * `copy(from, to, n)`: n floats of `src` from index `from` into `dst` at `to`, both from `values`.
   * On wasm both view the one heap, where TypedArray.set first clones its source (the rule for a
   * source sharing the destination's buffer) and every row needs a subarray; copyWithin over the
   * whole heap moves the floats directly (on a 2-core CPU: 2× faster for rows of 64 floats, 1.3× for
   * rows of 384).
   */
  copier(src: Float32Array, dst: Float32Array): (from: number, to: number, n: number) => void {
    if (src.buffer === dst.buffer) {
      const heap = new Float32Array(src.buffer);
      const [s0, d0] = [src.byteOffset / 4, dst.byteOffset / 4];
      return (from, to, n) => void heap.copyWithin(d0 + to, s0 + from, s0 + from + n);
    }
    return (from, to, n) => dst.set(src.subarray(from, from + n), to);
  }

  /**
   * The wasm heap itself, for a WebAssembly module of ours that imports it and works on tensors in
   * place (a tensor's address is `values(t).byteOffset`), or undefined on cpu and where the build
   * hides it. tfjs's SIMD build exports its memory (`asm.memory`); the threaded build imports one,
   * which our Node loader makes and hands it (`wasmMemory`, wasm-threads.ts).
   */
  heapMemory(): WebAssembly.Memory | undefined {
    if (this.kind !== 'wasm') return undefined;
    const m = (this.backend as unknown as { wasm?: { wasmMemory?: unknown; asm?: { memory?: unknown } } }).wasm;
    const memory = m?.wasmMemory ?? m?.asm?.memory;
    return memory instanceof WebAssembly.Memory ? memory : undefined;
  }

  /** The raw values of any dtype (bool as Uint8Array), in place like `values`. */
  data(x: TensorInfo): ArrayLike<number> {
    if (this.kind === 'wasm') return (this.backend as unknown as WasmLike).typedArrayFromHeap(x);
    return (this.backend as unknown as CpuLike).readSync(x.dataId);
  }

  /** Frees tracked intermediates now (a loop over chunks frees each chunk's before the next). */
  free(...xs: TensorInfo[]): void {
    for (const t of xs) {
      const i = this.made.lastIndexOf(t);
      if (i < 0 || this.kept.has(t)) continue;
      this.made.splice(i, 1);
      (this.backend as unknown as CpuLike).disposeData(t.dataId);
    }
  }

  /** Marks outputs: `dispose()` leaves them alive. */
  keep<T extends TensorInfo | TensorInfo[]>(x: T): T {
    for (const t of Array.isArray(x) ? x : [x]) this.kept.add(t);
    return x;
  }

  /** Frees every tracked intermediate that was not kept. */
  dispose(): void {
    for (const t of this.made) if (!this.kept.has(t)) (this.backend as unknown as CpuLike).disposeData(t.dataId);
    this.made.length = 0;
    this.kept.clear();
  }

  private kernel(name: string) {
    const k = getKernel(name, this.kind);
    if (k == null) throw new Error(`the ${this.kind} backend has no ${name} kernel`);
    return k.kernelFunc;
  }

  private track(t: TensorInfo): TensorInfo {
    this.made.push(t);
    return t;
  }
}
