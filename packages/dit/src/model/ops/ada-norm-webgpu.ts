import type { WebGPUProgramSpec } from '@t2md/core';

const WG = 128;

/** Linear workgroup id (tfjs folds a dispatch of more than 65,535 workgroups into 2-D / 3-D). */
const WID = 'i32(workgroupId.x + workgroupId.y * numWorkgroups.x + workgroupId.z * numWorkgroups.x * numWorkgroups.y)';

/**
 * out = (x − mean) · rsqrt(var + eps) · (1 + ada[n, scaleIdx]) + ada[n, shiftIdx], one workgroup of
 * 128 threads per token row: a sum and a centred sum of squares (two-pass variance, stable), each
 * reduced in workgroup memory, then one write pass. x `[N, T, D]`, ada `[N, K, D]`.
 */
export class AdaNormProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_ada_norm';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['xs', 'ada'];
  uniforms = 'T : i32, D : i32, K : i32, shiftIdx : i32, scaleIdx : i32, rows : i32, eps : f32,';

  constructor(shape: number[]) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [shape[0] * shape[1], 1, 1];
  }

  getUserCode(): string {
    return `
var<workgroup> red : array<f32, ${WG}>;
fn reduceSum(lid : i32, v : f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = ${WG / 2}; k > 0; k = k >> 1u) {
    if (lid < k) { red[lid] = red[lid] + red[lid + k]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}
fn main(index : i32) {
  let lid = i32(localIndex);
  let wid = ${WID};
  let live = wid < uniforms.rows;
  let row = min(wid, uniforms.rows - 1);
  let D = uniforms.D;
  let base = row * D;
  var s = 0.0;
  for (var d = lid; d < D; d = d + ${WG}) { s = s + xs[base + d]; }
  let mean = reduceSum(lid, s) / f32(D);
  var q = 0.0;
  for (var d = lid; d < D; d = d + ${WG}) { let c = xs[base + d] - mean; q = q + c * c; }
  let rstd = inverseSqrt(reduceSum(lid, q) / f32(D) + uniforms.eps);
  let ab = (row / uniforms.T) * uniforms.K * D;
  let sh = ab + uniforms.shiftIdx * D;
  let sc = ab + uniforms.scaleIdx * D;
  if (live) {
    for (var d = lid; d < D; d = d + ${WG}) {
      result[base + d] = (xs[base + d] - mean) * rstd * (1.0 + ada[sc + d]) + ada[sh + d];
    }
  }
}`;
  }
}
