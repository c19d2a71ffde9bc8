import { type ElementwiseConfig, type ProgramUniform, vectorPrelude, type WebGPUProgramSpec } from '@t2md/core';

const WG = 128;

/** Linear workgroup id (tfjs folds a dispatch of more than 65,535 workgroups into 2-D / 3-D). */
const WID = 'i32(workgroupId.x + workgroupId.y * numWorkgroups.x + workgroupId.z * numWorkgroups.x * numWorkgroups.y)';

/** WGSL: `reduceSum(lid, v)`, the sum of v over a workgroup of `wg` threads (a power of 2), for every thread. */
export function reduceSumWgsl(wg: number): string {
  return `var<workgroup> red : array<f32, ${wg}>;
fn reduceSum(lid : i32, v : f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var k = ${wg / 2}; k > 0; k = k >> 1u) {
    if (lid < k) { red[lid] = red[lid] + red[lid + k]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}`;
}

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
${reduceSumWgsl(WG)}
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

/** Most vectors a thread keeps in registers in the v2 row program; wider rows use the v1 program. */
const MAX_ROW_ITEMS = 8;

/** The v2 row layout for D features: vector width, threads per row and vectors per thread. */
function rowLayout(D: number, c: ElementwiseConfig): { vec: 1 | 4; wg: number; items: number } {
  const vec = D % 4 === 0 ? 4 : 1;
  const Dv = D / vec;
  // the fewest threads (≥ 32, one warp) that hold the row in ≤ itemsPerThread vectors each
  const want = Math.ceil(Dv / c.itemsPerThread);
  const wg = Math.min(c.workgroupSize, Math.max(32, 2 ** Math.ceil(Math.log2(want))));
  return { vec, wg, items: Math.ceil(Dv / wg) };
}

/**
 * v2 of adaNorm, on the shared elementwise layout (vec4 when D % 4 == 0, `itemsPerThread` vectors per
 * thread, at most `maxWorkgroups` workgroups striding over the rows). One workgroup per token row
 * reads the row ONCE into registers, reduces the sum and then the centred sum of squares from them
 * (same two-pass variance as v1), and writes; v1 reads x three times with scalar loads. Expected: x
 * read + out written once, ≥ 1 TB/s at 64M floats on the H100 where v1 is bound by its 3 reads.
 * The shift/scale rows are read per vector at `(row / T) · K · D` computed once per row.
 * x `[N, T, D]`, ada `[N, K, D]`, out `[N, T, D]`.
 */
export class AdaNormRowProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames = ['xs', 'ada'];
  uniforms = 'T : i32, D : i32, K : i32, shiftIdx : i32, scaleIdx : i32, rows : i32, eps : f32, groups : i32, iters : i32,';
  outputComponent: number;
  variableComponents: number[];
  private readonly vec: 1 | 4;
  private readonly wg: number;
  private readonly items: number;

  /** Whether a row of D features fits the registers of one workgroup under this layout. */
  static fits(D: number, c: ElementwiseConfig): boolean {
    return rowLayout(D, c).items <= MAX_ROW_ITEMS;
  }

  constructor(shape: number[], c: ElementwiseConfig) {
    const { vec, wg, items } = rowLayout(shape[2]!, c);
    this.vec = vec;
    this.wg = wg;
    this.items = items;
    this.outputShape = shape;
    this.outputComponent = vec;
    this.variableComponents = [vec, vec];
    this.workgroupSize = [wg, 1, 1];
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [Math.max(1, Math.min(shape[0]! * shape[1]!, c.maxWorkgroups)), 1, 1];
    this.shaderKey = `t2md_ada_norm_rows_v${vec}_i${items}_w${wg}`;
  }

  /** The program's uniforms, in the order of `uniforms`. */
  programUniforms(K: number, a: { shiftIdx: number; scaleIdx: number; eps: number }): ProgramUniform[] {
    const [N, T, D] = this.outputShape as [number, number, number];
    const groups = this.dispatch[0];
    const i32 = (v: number): ProgramUniform => ({ type: 'int32', data: [v] });
    return [
      i32(T),
      i32(D),
      i32(K),
      i32(a.shiftIdx),
      i32(a.scaleIdx),
      i32(N * T),
      { type: 'float32', data: [a.eps] },
      i32(groups),
      i32(Math.ceil((N * T) / groups)),
    ];
  }

  getUserCode(): string {
    const rs = Array.from({ length: this.items }, (_, r) => r);
    const each = (f: (r: number) => string) => rs.map(f).join('\n    ');
    const sum = (f: (r: number) => string) => rs.map(f).join(' + ');
    return `${vectorPrelude(this.vec)}
${reduceSumWgsl(this.wg)}
fn main(index : i32) {
  let lid = i32(localIndex);
  let Dv = uniforms.D / VEC;
  // a loop bound from uniforms keeps the barriers in uniform control flow
  for (var it = 0; it < uniforms.iters; it = it + 1) {
    let wid = i32(workgroupId.x) + it * uniforms.groups;
    let row = min(wid, uniforms.rows - 1);
    let base = row * Dv;
    ${each((r) => `let d${r} = lid + ${r * this.wg};\n    var v${r} = T(0.0);\n    if (d${r} < Dv) { v${r} = xs[base + d${r}]; }`)}
    let mean = reduceSum(lid, ${sum((r) => `lanesum(v${r})`)}) / f32(uniforms.D);
    ${each((r) => `let c${r} = select(T(0.0), v${r} - T(mean), d${r} < Dv);`)}
    let rstd = inverseSqrt(reduceSum(lid, ${sum((r) => `lanesum(c${r} * c${r})`)}) / f32(uniforms.D) + uniforms.eps);
    let ab = (row / uniforms.T) * uniforms.K * Dv;
    let sh = ab + uniforms.shiftIdx * Dv;
    let sc = ab + uniforms.scaleIdx * Dv;
    if (wid < uniforms.rows) {
      ${each((r) => `if (d${r} < Dv) { result[base + d${r}] = c${r} * rstd * (1.0 + ada[sc + d${r}]) + ada[sh + d${r}]; }`)}
    }
  }
}`;
  }
}
