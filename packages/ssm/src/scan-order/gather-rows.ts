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
export const GATHER_ROWS_SPLIT = 'T2mdGatherRowsSplit';

interface GatherRowsAttrs {
  /** The row of x each output row copies, in 0..L-1. */
  idx: Int32Array;
}

/** The copy on typed arrays: x `[B, L, S]` flat, out `[B, idx.length, S]` flat. */
export function gatherRowsValues(
  x: Float32Array,
  out: Float32Array,
  B: number,
  L: number,
  S: number,
  idx: Int32Array,
  copy = (from: number, to: number, n: number) => out.set(x.subarray(from, from + n), to),
): void {
  const Lo = idx.length;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < Lo; i++) copy((b * L + idx[i]!) * S, (b * Lo + i) * S, S);
  }
}

/**
 * The copy of `gatherRowsValues` with the last axis cut into parts: x `[B, L, S]` flat, `outs[k]`
 * `[B, idx.length, sizes[k]]` flat, part k holding columns sizes[0] + … + sizes[k−1] onwards.
 */
export function gatherRowsSplitValues(
  x: Float32Array,
  outs: Float32Array[],
  B: number,
  L: number,
  S: number,
  idx: Int32Array,
  sizes: readonly number[],
  copies = outs.map((o) => (from: number, to: number, n: number) => o.set(x.subarray(from, from + n), to)),
): void {
  const Lo = idx.length;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < Lo; i++) {
      let from = (b * L + idx[i]!) * S;
      for (let k = 0; k < sizes.length; k++) {
        const n = sizes[k]!;
        copies[k]!(from, (b * Lo + i) * n, n);
        from += n;
      }
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
  const [xv, ov] = [ops.values(x), ops.values(out)];
  gatherRowsValues(xv, ov, B, L, S, idx, ops.copier(xv, ov));
  ops.dispose();
  return out;
};

const hostSplit: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = (inputs as { x: TensorInfo }).x;
  const { idx, sizes } = attrs as unknown as GatherRowsAttrs & { sizes: number[] };
  const [B, L] = x.shape as [number, number];
  const S = x.shape[2]!;
  const ops = new HostOps(backend as KernelBackend);
  const outs = sizes.map((n) => ops.keep(ops.empty([B, idx.length, n]))); // all allocated before the views are taken
  const [xv, ov] = [ops.values(x), outs.map((o) => ops.values(o))];
  gatherRowsSplitValues(
    xv,
    ov,
    B,
    L,
    S,
    idx,
    sizes,
    ov.map((o) => ops.copier(xv, o)),
  );
  ops.dispose();
  return outs;
};

const kernels: KernelConfig[] = [
  { kernelName: GATHER_ROWS, backendName: 'cpu', kernelFunc: host },
  { kernelName: GATHER_ROWS, backendName: 'wasm', kernelFunc: host },
  { kernelName: GATHER_ROWS_SPLIT, backendName: 'cpu', kernelFunc: hostSplit },
  { kernelName: GATHER_ROWS_SPLIT, backendName: 'wasm', kernelFunc: hostSplit },
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

/**
 * `gatherRows` of x `[B, L, S]` with its last axis cut into parts of `sizes` (summing to S, checked
 * by the caller): `[B, idx.length, sizes[k]]` each. One pass where a gather and then a split would copy
 * every value twice. cpu and wasm only, and no gradient: for inference (the bidirectional mixer outside
 * a gradient tape).
 */
export function gatherRowsSplit(x: Tensor, idx: Int32Array, sizes: readonly number[]): Tensor[] {
  registerKernelsOnce(kernels);
  return engine().runKernel(GATHER_ROWS_SPLIT, { x }, { idx, sizes: [...sizes] } as unknown as NamedAttrMap) as Tensor[];
}
