import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';
import { type CpuLike, hostBackendName, type WasmLike } from './host-ops.js';

/** A float32 output of a typed-array kernel: its shape and values. */
export interface TypedOutput {
  shape: number[];
  values: Float32Array;
}

/**
 * Reads a kernel input as a Float32Array on the cpu or wasm backend. On wasm this is a view of the
 * wasm heap: copy it before anything allocates (makeOutput can grow and detach the heap).
 */
export function readInput(backend: KernelBackend, t: TensorInfo): Float32Array {
  const name = hostBackendName(backend);
  if (name === 'wasm') return (backend as unknown as WasmLike).typedArrayFromHeap(t) as Float32Array;
  const v = (backend as unknown as CpuLike).readSync(t.dataId);
  return v instanceof Float32Array ? v : Float32Array.from(v);
}

/** Makes a float32 output tensor on the cpu or wasm backend from values computed in JavaScript. */
export function makeOutput(backend: KernelBackend, out: TypedOutput): TensorInfo {
  if (hostBackendName(backend) === 'wasm') {
    const info = (backend as unknown as WasmLike).makeOutput(out.shape, 'float32');
    (backend as unknown as WasmLike).typedArrayFromHeap(info).set(out.values);
    return info;
  }
  return (backend as unknown as CpuLike).makeTensorInfo(out.shape, 'float32', out.values);
}

/**
 * Builds one kernelFunc that serves both the cpu and the wasm backend from a plain function over
 * typed arrays: inputs are copied out (so wasm heap growth cannot detach them), `compute` runs, and
 * each output becomes a tensor on the calling backend.
 */
export function typedArrayKernel<A>(
  inputNames: readonly string[],
  compute: (inputs: Record<string, { shape: number[]; values: Float32Array } | undefined>, attrs: A) => TypedOutput | TypedOutput[],
) {
  return ({ inputs, backend, attrs }: { inputs: Record<string, TensorInfo>; backend: KernelBackend; attrs?: unknown }) => {
    const arrays: Record<string, { shape: number[]; values: Float32Array } | undefined> = {};
    for (const name of inputNames) {
      const t = inputs[name];
      arrays[name] = t == null ? undefined : { shape: t.shape.slice(), values: Float32Array.from(readInput(backend, t)) };
    }
    const out = compute(arrays, attrs as A);
    return Array.isArray(out) ? out.map((o) => makeOutput(backend, o)) : makeOutput(backend, out);
  };
}
