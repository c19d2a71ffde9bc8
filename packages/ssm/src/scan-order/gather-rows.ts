/**
 * `T2mdGatherRows`, the token reordering of the scan orders on cpu and wasm: `out[b, i] = x[b, idx[i]]`
 * for x `[B, L, ...]`, whole rows copied at once. tfjs-backend-wasm's GatherV2 computes an index per
 * element (about 20 M floats/s on a 2-core CPU; the student's mixers spent 18% of a sampling step in
 * it); a row copy runs at memory speed. WebGPU keeps tfjs's gather (gather.ts).
 */
import { HostOps, registerKernelsOnce } from '@t2md/core';
import {
  engine,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

export const GATHER_ROWS = 'T2mdGatherRows';

interface GatherRowsAttrs {
  /** The row of x each output row copies, in 0..L-1. */
  idx: Int32Array;
}

/** The copy on typed arrays: x `[B, L, S]` flat, out `[B, idx.length, S]` flat. */
export function gatherRowsValues(x: Float32Array, out: Float32Array, B: number, L: number, S: number, idx: Int32Array): void {
  const Lo = idx.length;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < Lo; i++) {
      const from = (b * L + idx[i]!) * S;
      out.set(x.subarray(from, from + S), (b * Lo + i) * S);
    }
  }
}

const host: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = (inputs as { x: TensorInfo }).x;
  const { idx } = attrs as unknown as GatherRowsAttrs;
  const [B, L] = x.shape as [number, number];
  const S = x.shape.slice(2).reduce((a, b) => a * b, 1);
  const ops = new HostOps(backend as KernelBackend);
  const out = ops.keep(ops.empty([B, idx.length, ...x.shape.slice(2)])); // every row written below; allocated before the views are taken
  gatherRowsValues(ops.values(x), ops.values(out), B, L, S, idx);
  ops.dispose();
  return out;
};

const kernels: KernelConfig[] = [
  { kernelName: GATHER_ROWS, backendName: 'cpu', kernelFunc: host },
  { kernelName: GATHER_ROWS, backendName: 'wasm', kernelFunc: host },
];

/**
 * Rows of axis 1 of x `[B, L, ...]` in the order `idx` (each in 0..L-1, checked by the callers):
 * `[B, idx.length, ...]`. cpu and wasm only; no gradient of its own (the callers' custom gradients
 * gather again with the inverse tables).
 */
export function gatherRows(x: Tensor, idx: Int32Array): Tensor {
  registerKernelsOnce(kernels);
  return engine().runKernel(GATHER_ROWS, { x }, { idx } as unknown as NamedAttrMap) as Tensor;
}
