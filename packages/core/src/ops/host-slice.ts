/**
 * `hostSlice` and `hostSplit`: tf.slice and tf.split whose cpu and wasm kernels copy only the parts. tfjs-backend-wasm's Slice
 * (and SplitV, built on it) first reads its whole input back, so taking the q, k and v columns of a
 * fused projection, or the three parts of the Mamba mixer's conv output, costs a full copy per part
 * (SplitV took 8% of a student sampling step on a 2-core CPU). WebGPU runs tf.slice itself.
 */

import type { GradConfig, KernelBackend, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { assertFloat, check, fmtShape } from '../assert.js';
import { HostOps } from '../kernel/host-ops.js';
import { registerKernelsOnce } from '../kernel/register.js';

export const HOST_SLICE = 'T2mdSlice';
export const HOST_SPLIT = 'T2mdSplitLast';

interface SliceAttrs {
  begin: number[];
  size: number[];
}

const host: KernelFunc = ({ inputs, backend, attrs }) => {
  const { begin, size } = attrs as unknown as SliceAttrs;
  const ops = new HostOps(backend as KernelBackend);
  const out = ops.keep(ops.slice(inputs.x as TensorInfo, begin, size));
  ops.dispose();
  return out;
};

/** The parts of the last axis, each copied out run by run. */
const splitKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { sizes } = attrs as unknown as { sizes: number[] };
  const x = inputs.x as TensorInfo;
  const lead = x.shape.slice(0, -1);
  const ops = new HostOps(backend as KernelBackend);
  let at = 0;
  const outs = sizes.map((n) => {
    const part = ops.keep(ops.slice(x, [...lead.map(() => 0), at], [...lead, n]));
    at += n;
    return part;
  });
  ops.dispose();
  return outs;
};

const kernels: KernelConfig[] = [
  { kernelName: HOST_SLICE, backendName: 'cpu', kernelFunc: host },
  { kernelName: HOST_SLICE, backendName: 'wasm', kernelFunc: host },
  { kernelName: HOST_SPLIT, backendName: 'cpu', kernelFunc: splitKernel },
  { kernelName: HOST_SPLIT, backendName: 'wasm', kernelFunc: splitKernel },
];

/** The gradient of a slice: dy put back in place, zeros around it (tf.slice's own gradient). */
const grad: GradConfig = {
  kernelName: HOST_SLICE,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    const { begin, size } = attrs as unknown as SliceAttrs;
    const pads = begin.map((b, i): [number, number] => [b, x!.shape[i]! - b - size[i]!]);
    return { x: () => tf.pad(dy as tf.Tensor, pads) };
  },
};

/** The gradient of a split: one concat of the parts' gradients. */
const splitGrad: GradConfig = {
  kernelName: HOST_SPLIT,
  gradFunc: (dys) => ({ x: () => tf.concat(dys as tf.Tensor[], -1) }),
};

/**
 * `x[begin : begin + size]` for float32 x of any rank (`size` entries of −1 mean "to the end"), like
 * tf.slice and differentiable; on cpu and wasm copied run by run (`T2mdSlice`), on webgpu tf.slice.
 */
export function hostSlice(x: tf.Tensor, begin: number[], size: number[]): tf.Tensor {
  // checked here on every backend, so that bad input gets the same sentence on webgpu too
  assertFloat('x', x);
  check(
    begin.length === x.rank && size.length === x.rank,
    () => `begin and size must have one entry per axis of x ${fmtShape(x.shape)}, got [${begin}] and [${size}].`,
  );
  const full = size.map((s, i) => (s === -1 ? x.shape[i]! - begin[i]! : s));
  check(
    full.every((s, i) => Number.isInteger(s) && s >= 0 && Number.isInteger(begin[i]) && begin[i]! >= 0 && begin[i]! + s <= x.shape[i]!),
    () => `begin [${begin}] and size [${size}] must lie within x ${fmtShape(x.shape)}.`,
  );
  if (tf.getBackend() === 'webgpu') return tf.slice(x, begin, size);
  registerKernelsOnce(kernels, [grad, splitGrad]);
  return tf.engine().runKernel(HOST_SLICE, { x }, { begin, size: full } as unknown as NamedAttrMap) as tf.Tensor;
}

/**
 * tf.split of the last axis of float32 x into parts of `sizes` (summing to it), differentiable (the
 * gradient is one concat); on cpu and wasm each part copied run by run (`T2mdSplitLast`), on webgpu
 * tf.split.
 */
export function hostSplit(x: tf.Tensor, sizes: number[]): tf.Tensor[] {
  assertFloat('x', x);
  const C = x.shape[x.rank - 1]!;
  check(
    x.rank >= 1 && sizes.every((n) => Number.isInteger(n) && n >= 0) && sizes.reduce((a, b) => a + b, 0) === C,
    () => `sizes [${sizes}] must be non-negative integers summing to the last axis of x ${fmtShape(x.shape)}.`,
  );
  if (tf.getBackend() === 'webgpu') return tf.split(x, sizes, -1);
  registerKernelsOnce(kernels, [grad, splitGrad]);
  return tf.engine().runKernel(HOST_SPLIT, { x }, { sizes } as unknown as NamedAttrMap) as tf.Tensor[];
}
