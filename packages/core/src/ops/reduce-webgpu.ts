/**
 * `tf.sum` and `tf.mean` on WebGPU for the two shapes tfjs-webgpu 4.22 handles slowly, which a training
 * step is full of:
 * - over axes that are not innermost (a bias gradient sums [131,072, 128] over rows; the two scan
 *   directions' gradients meet in a sum over a middle axis of 2): tfjs transposes the tensor first,
 *   then reduces the rows it made. Here one pass reads it in place, threads along the kept inner axis
 *   (coalesced), each summing a slice of the reduced rows; a second pass adds the slices.
 * - over the innermost axes when there are few rows (a loss is the mean of a whole [512, 256, 128]
 *   tensor): tfjs gives each output one workgroup, so a full reduction runs on one SM (10 ms on the
 *   H200 for 16M floats). Here many workgroups each reduce a slice of a row, then a second pass adds them.
 * Seen on the H200 (a distillation step at batch 512): `Mean []` 100 ms and `Sum` 74 ms of 1.3 s.
 * Everything else (other dtypes, scattered axes, many short rows) goes to tfjs's own kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { disposeIntermediate, runProgram, type WebGPUProgramSpec } from '../kernel/webgpu-program.js';

/** Threads the first pass aims for, and the fewest elements one thread (column) or workgroup (row) sums. */
const TARGET_THREADS = 131_072;
const MIN_COLUMN_RUN = 8;
const ROW_CHUNK = 8192;
/** Innermost reductions go to tfjs unless a row is at least this long and rows are few. */
const MIN_ROW_LENGTH = 4096;
const MAX_ROWS = 1024;

/**
 * Σ over the middle axis of x viewed as [O, R, I]: out [S, O, I] partial sums of R-slices (S = 1: the
 * sums). A thread takes one (slice, o, vector of I) and walks its rows four at a time, the four loads
 * issued together: a column sum is bound by how many loads are in flight, not by the adds.
 */
class ColumnPartialProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0, 1, 2] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  variableNames = ['x'];
  uniforms = 'O : i32, R : i32, Iv : i32, per : i32, scale : f32,';
  size = true;
  variableComponents: number[];
  outputComponent: number;

  constructor(S: number, O: number, I: number) {
    const vec = I % 4 === 0 ? 4 : 1;
    this.outputShape = [S, O, I];
    this.variableComponents = [vec];
    this.outputComponent = vec;
    this.dispatch = [Math.ceil((S * O * I) / vec / 256), 1, 1];
    this.shaderKey = `t2md_reduce_columns_v${vec}`;
  }

  getUserCode(): string {
    const T = this.outputComponent === 4 ? 'vec4<f32>' : 'f32';
    return `
fn main(index : i32) {
  if (index >= uniforms.size) { return; }
  let Iv = uniforms.Iv;
  let i = index % Iv;
  let o = (index / Iv) % uniforms.O;
  let s = index / (Iv * uniforms.O);
  let r0 = s * uniforms.per;
  let r1 = min(r0 + uniforms.per, uniforms.R);
  var a0 = ${T}(0.0);
  var a1 = ${T}(0.0);
  var a2 = ${T}(0.0);
  var a3 = ${T}(0.0);
  var at = (o * uniforms.R + r0) * Iv + i;
  var r = r0;
  for (; r + 3 < r1; r = r + 4) {
    a0 = a0 + x[at];
    a1 = a1 + x[at + Iv];
    a2 = a2 + x[at + 2 * Iv];
    a3 = a3 + x[at + 3 * Iv];
    at = at + 4 * Iv;
  }
  for (; r < r1; r = r + 1) {
    a0 = a0 + x[at];
    at = at + Iv;
  }
  result[index] = ((a0 + a1) + (a2 + a3)) * uniforms.scale;
}`;
  }
}

/** Σ over slices of each row of x viewed as [O, R]: out [S, O], one workgroup per (slice, row). */
class RowPartialProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_reduce_rows';
  dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  variableNames = ['x'];
  uniforms = 'O : i32, R : i32, per : i32, groups : i32,';

  constructor(S: number, O: number) {
    this.outputShape = [S, O];
    this.dispatch = [S * O, 1, 1];
  }

  getUserCode(): string {
    return `
var<workgroup> red : array<f32, 256>;
fn main(index : i32) {
  let lid = i32(localIndex);
  // tfjs folds a dispatch of more than 65,535 workgroups into 2-D: linearise and mask the padding
  let wid = i32(workgroupId.x + workgroupId.y * numWorkgroups.x);
  let live = wid < uniforms.groups;
  let o = min(wid, uniforms.groups - 1) % uniforms.O;
  let s = min(wid, uniforms.groups - 1) / uniforms.O;
  let r0 = s * uniforms.per;
  let r1 = min(r0 + uniforms.per, uniforms.R);
  var acc = 0.0;
  for (var r = r0 + lid; r < r1; r = r + 256) { acc = acc + x[o * uniforms.R + r]; }
  red[lid] = acc;
  workgroupBarrier();
  for (var k = 128; k > 0; k = k >> 1u) {
    if (lid < k) { red[lid] = red[lid] + red[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0 && live) { result[s * uniforms.O + o] = red[0]; }
}`;
  }
}

/** out [M] = scale · Σ_s P[s, :] (P [S, M]): one workgroup per output, its threads striding over s. */
class SumLayersProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_reduce_layers';
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  variableNames = ['P'];
  uniforms = 'S : i32, M : i32, scale : f32,';

  constructor(M: number) {
    this.outputShape = [M];
    this.dispatch = [M, 1, 1];
  }

  getUserCode(): string {
    return `
var<workgroup> red : array<f32, 64>;
fn main(index : i32) {
  let lid = i32(localIndex);
  // tfjs folds a dispatch of more than 65,535 workgroups into 2-D: linearise and mask the padding
  let wid = i32(workgroupId.x + workgroupId.y * numWorkgroups.x);
  let m = min(wid, uniforms.M - 1);
  var acc = 0.0;
  for (var s = lid; s < uniforms.S; s = s + 64) { acc = acc + P[s * uniforms.M + m]; }
  red[lid] = acc;
  workgroupBarrier();
  for (var k = 32; k > 0; k = k >> 1u) {
    if (lid < k) { red[lid] = red[lid] + red[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0 && wid < uniforms.M) { result[m] = red[0] * uniforms.scale; }
}`;
  }
}

/** x viewed as [O, R, I] with the reduced axes as R, when they are one contiguous block; else null. */
export function reductionView(shape: readonly number[], axes: readonly number[]): { O: number; R: number; I: number } | null {
  if (axes.length === 0) return null;
  const sorted = [...axes].sort((a, b) => a - b);
  for (let k = 1; k < sorted.length; k++) if (sorted[k] !== sorted[k - 1]! + 1) return null;
  const prod = (a: number, b: number) => shape.slice(a, b).reduce((p, d) => p * d, 1);
  const first = sorted[0]!;
  const last = sorted[sorted.length - 1]!;
  return { O: prod(0, first), R: prod(first, last + 1), I: prod(last + 1, shape.length) };
}

/** The reduced output `[O·I]` (to be reshaped by the caller), or null to leave the case to tfjs. */
export function reduceOnGpu(backend: object, x: tf.TensorInfo, axes: number[], mean: boolean): tf.TensorInfo | null {
  if (x.dtype !== 'float32') return null;
  const v = reductionView(x.shape, axes);
  if (v == null || v.R === 0 || v.O * v.I === 0) return null;
  const { O, R, I } = v;
  const scale = mean ? 1 / R : 1;
  const f32 = (x: number) => ({ type: 'float32' as const, data: [x] });
  const i32 = (x: number) => ({ type: 'int32' as const, data: [x] });
  if (I > 1) {
    const vec = I % 4 === 0 ? 4 : 1;
    const S = Math.max(1, Math.min(Math.ceil((TARGET_THREADS * vec) / (O * I)), Math.ceil(R / MIN_COLUMN_RUN)));
    const per = Math.ceil(R / S);
    const slices = Math.ceil(R / per);
    const Iv = I / vec;
    if (slices === 1) {
      return runProgram(backend, new ColumnPartialProgram(1, O, I), [x], [i32(O), i32(R), i32(Iv), i32(per), f32(scale)]);
    }
    const P = runProgram(backend, new ColumnPartialProgram(slices, O, I), [x], [i32(O), i32(R), i32(Iv), i32(per), f32(1)]);
    const out = runProgram(backend, new SumLayersProgram(O * I), [P], [i32(slices), i32(O * I), f32(scale)]);
    disposeIntermediate(backend, P);
    return out;
  }
  if (R < MIN_ROW_LENGTH || O > MAX_ROWS) return null; // many short rows: tfjs's one-workgroup-per-row is right
  const slices = Math.ceil(R / ROW_CHUNK);
  const P = runProgram(backend, new RowPartialProgram(slices, O), [x], [i32(O), i32(R), i32(ROW_CHUNK), i32(slices * O)]);
  const out = runProgram(backend, new SumLayersProgram(O), [P], [i32(slices), i32(O), f32(scale)]);
  disposeIntermediate(backend, P);
  return out;
}

/** Registers the Sum and Mean wrappers on webgpu (idempotent; tfjs's kernels serve every other case). */
export function registerReduceKernels(): void {
  for (const name of ['Sum', 'Mean'] as const) {
    const original = tf.getKernel(name, 'webgpu');
    if (original == null || (original as { t2mdReduce?: boolean }).t2mdReduce) continue;
    const kernelFunc: tf.KernelFunc = (args) => {
      const x = (args.inputs as { x: tf.TensorInfo }).x;
      const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
      const axes = tf.util.parseAxisParam(axis, x.shape);
      const out = tf.util.sizeFromShape(x.shape) > 0 ? reduceOnGpu(args.backend, x, axes, name === 'Mean') : null;
      if (out == null) return original.kernelFunc(args);
      const shape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d)).filter((_, i) => keepDims || !axes.includes(i));
      return { ...out, shape };
    };
    tf.unregisterKernel(name, 'webgpu');
    tf.registerKernel({ ...original, kernelFunc, t2mdReduce: true } as tf.KernelConfig);
  }
}
