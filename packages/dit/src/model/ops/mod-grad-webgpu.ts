/**
 * WGSL of the adaLN gradients (adaNorm's and gatedAdd's), which tfjs ops took ~30 dispatches per
 * adaNorm and ~6 per gatedAdd to compute (~600 per shapes-teacher step, each costing ~0.1 ms of host
 * time on the H200 machine):
 * - `AdaNormGradXProgram`: dx of adaNorm, one workgroup per token row (the forward's row layout);
 * - `ModGradPartialProgram`: per (n, slice of T) partial sums over the slice's tokens of dy (the shift
 *   gradient) and dy·x̂ (the scale gradient; x̂ recomputed per row), or of dy·m (the gate gradient);
 * - `ModGradRowsProgram`: sums the slices into the `[N, K, D]` gradient of `ada`, zeros in its other rows.
 * Shapes: x, dy, m `[N, T, D]`, ada `[N, K, D]`; D % 4 == 0 runs vec4.
 */
import { type ProgramUniform, vectorPrelude, type WebGPUProgramSpec } from '@t2md/core';
import { reduceSumWgsl } from './ada-norm-webgpu.js';

/** Threads that share one token row: one warp's worth at least, each holding ≤ ITEMS vectors. */
const ITEMS = 8;

/** Row layout for D features: vector width, threads per row (a power of 2, 32..256), vectors per thread. */
export function gradRowLayout(D: number): { vec: 1 | 4; wg: number; items: number } | null {
  const vec = D % 4 === 0 ? 4 : 1;
  const Dv = D / vec;
  const wg = Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(Math.ceil(Dv / ITEMS)))));
  const items = Math.ceil(Dv / wg);
  return items <= ITEMS ? { vec, wg, items } : null;
}

/** WGSL statements loading row `row` of buffer `buf` into `name0..` (zeros past the row's end). */
function loadRow(buf: string, name: string, items: number, wg: number): string {
  return Array.from(
    { length: items },
    (_, r) => `var ${name}${r} = T(0.0); if (lid + ${r * wg} < Dv) { ${name}${r} = ${buf}[base + lid + ${r * wg}]; }`,
  ).join('\n    ');
}

const sumOf = (items: number, f: (r: number) => string) => Array.from({ length: items }, (_, r) => f(r)).join(' + ');

/** The mean and rstd of row `base` of xs held in x0.., as the forward computes them (two-pass variance). */
function rowStats(items: number): string {
  return `let mean = reduceSum(lid, ${sumOf(items, (r) => `lanesum(x${r})`)}) / f32(uniforms.D);
    ${Array.from({ length: items }, (_, r) => `let c${r} = select(T(0.0), x${r} - T(mean), lid + ${r} * WG < Dv);`).join('\n    ')}
    let rstd = inverseSqrt(reduceSum(lid, ${sumOf(items, (r) => `lanesum(c${r} * c${r})`)}) / f32(uniforms.D) + uniforms.eps);`;
}

/**
 * dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·(1 + scale), x̂ = (x − μ)·rstd, means over D.
 * Workgroups stride over the rows (at most `maxGroups` of them).
 */
export class AdaNormGradXProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames = ['xs', 'dy', 'ada'];
  uniforms = 'T : i32, D : i32, K : i32, scaleIdx : i32, rows : i32, eps : f32, groups : i32, iters : i32,';
  outputComponent: number;
  variableComponents: number[];
  private readonly l: { vec: 1 | 4; wg: number; items: number };

  constructor(shape: number[], layout: { vec: 1 | 4; wg: number; items: number }, maxGroups = 65535) {
    this.l = layout;
    this.outputShape = shape;
    this.outputComponent = layout.vec;
    this.variableComponents = [layout.vec, layout.vec, layout.vec];
    this.workgroupSize = [layout.wg, 1, 1];
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [Math.max(1, Math.min(shape[0]! * shape[1]!, maxGroups)), 1, 1];
    this.shaderKey = `t2md_ada_norm_dx_v${layout.vec}_i${layout.items}_w${layout.wg}`;
  }

  programUniforms(K: number, scaleIdx: number, eps: number): ProgramUniform[] {
    const [N, T, D] = this.outputShape as [number, number, number];
    const groups = this.dispatch[0];
    const i32 = (v: number): ProgramUniform => ({ type: 'int32', data: [v] });
    return [
      i32(T),
      i32(D),
      i32(K),
      i32(scaleIdx),
      i32(N * T),
      { type: 'float32', data: [eps] },
      i32(groups),
      i32(Math.ceil((N * T) / groups)),
    ];
  }

  getUserCode(): string {
    const { vec, wg, items } = this.l;
    const each = (f: (r: number) => string) => Array.from({ length: items }, (_, r) => f(r)).join('\n    ');
    return `${vectorPrelude(vec)}
const WG : i32 = ${wg};
${reduceSumWgsl(wg)}
fn main(index : i32) {
  let lid = i32(localIndex);
  let Dv = uniforms.D / VEC;
  // a loop bound from uniforms keeps the barriers in uniform control flow
  for (var it = 0; it < uniforms.iters; it = it + 1) {
    let wid = i32(workgroupId.x) + it * uniforms.groups;
    let row = min(wid, uniforms.rows - 1);
    let base = row * Dv;
    ${loadRow('xs', 'x', items, wg)}
    ${loadRow('dy', 'e', items, wg)}
    ${rowStats(items)}
    let sc = ((row / uniforms.T) * uniforms.K + uniforms.scaleIdx) * Dv;
    ${each((r) => `var g${r} = T(0.0); if (lid + ${r * wg} < Dv) { g${r} = e${r} * (T(1.0) + ada[sc + lid + ${r * wg}]); }`)}
    let mg = reduceSum(lid, ${sumOf(items, (r) => `lanesum(g${r})`)}) / f32(uniforms.D);
    let mgx = reduceSum(lid, ${sumOf(items, (r) => `lanesum(g${r} * c${r})`)}) * rstd / f32(uniforms.D);
    if (wid < uniforms.rows) {
      ${each((r) => `if (lid + ${r * wg} < Dv) { result[base + lid + ${r * wg}] = rstd * (g${r} - T(mg) - c${r} * rstd * mgx); }`)}
    }
  }
}`;
  }
}

/**
 * Partial sums over slices of T: out `[S, N, J, D]` with, for slice s of batch entry n,
 * `norm` (J = 2): Σ dy and Σ dy·x̂ over the slice's tokens; `gate` (J = 1): Σ dy·m.
 * One workgroup per (n, s); it walks the slice's rows one at a time (row statistics need the row).
 */
export class ModGradPartialProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames = ['dy', 'xs'];
  uniforms = 'T : i32, D : i32, S : i32, per : i32, eps : f32, N : i32,';
  outputComponent: number;
  variableComponents: number[];
  private readonly l: { vec: 1 | 4; wg: number; items: number };

  constructor(
    private readonly kind: 'norm' | 'gate',
    N: number,
    D: number,
    readonly S: number,
    layout: { vec: 1 | 4; wg: number; items: number },
  ) {
    this.l = layout;
    const J = kind === 'norm' ? 2 : 1;
    this.outputShape = [S, N, J, D];
    this.outputComponent = layout.vec;
    this.variableComponents = [layout.vec, layout.vec];
    this.workgroupSize = [layout.wg, 1, 1];
    this.dispatchLayout = { x: [0, 1, 2, 3] };
    this.dispatch = [N * S, 1, 1];
    this.shaderKey = `t2md_mod_grad_partial_${kind}_v${layout.vec}_i${layout.items}_w${layout.wg}`;
  }

  programUniforms(T: number, D: number, per: number, eps: number): ProgramUniform[] {
    const i32 = (v: number): ProgramUniform => ({ type: 'int32', data: [v] });
    return [i32(T), i32(D), i32(this.S), i32(per), { type: 'float32', data: [eps] }, i32(this.outputShape[1]!)];
  }

  getUserCode(): string {
    const { vec, wg, items } = this.l;
    const norm = this.kind === 'norm';
    const each = (f: (r: number) => string) => Array.from({ length: items }, (_, r) => f(r)).join('\n    ');
    return `${vectorPrelude(vec)}
const WG : i32 = ${wg};
${norm ? reduceSumWgsl(wg) : ''}
fn main(index : i32) {
  let lid = i32(localIndex);
  let Dv = uniforms.D / VEC;
  // tfjs folds a dispatch of more than 65,535 workgroups into 2-D: linearise, and mask the padding
  let wid = i32(workgroupId.x + workgroupId.y * numWorkgroups.x);
  let N = uniforms.N;
  let valid = wid < N * uniforms.S;
  let n = min(wid / uniforms.S, N - 1);
  let s = wid % uniforms.S;
  ${each((r) => `var a${r} = T(0.0);${norm ? ` var b${r} = T(0.0);` : ''}`)}
  let t0 = s * uniforms.per;
  // per is uniform, so every workgroup runs the same trip count (rows past T are masked)
  for (var i = 0; i < uniforms.per; i = i + 1) {
    let t = t0 + i;
    let live = valid && t < uniforms.T;
    let base = (n * uniforms.T + min(t, uniforms.T - 1)) * Dv;
    ${loadRow('dy', 'e', items, wg)}
    ${loadRow('xs', 'x', items, wg)}
    ${
      norm
        ? `${rowStats(items)}
    if (live) {
      ${each((r) => `a${r} = a${r} + e${r}; b${r} = b${r} + e${r} * c${r} * rstd;`)}
    }`
        : `if (live) {
      ${each((r) => `a${r} = a${r} + e${r} * x${r};`)}
    }`
    }
  }
  let o = (s * N + n) * ${norm ? 2 : 1} * Dv;
  ${each((r) => `if (valid && lid + ${r * wg} < Dv) { result[o + lid + ${r * wg}] = a${r};${norm ? ` result[o + Dv + lid + ${r * wg}] = b${r};` : ''} }`)}
}`;
  }
}

/**
 * out `[N, K, D]`: row `rowIdx[j]` = Σ_s P[s, n, j, :] for each of the J partial rows, zeros in the
 * other rows (P from `ModGradPartialProgram`).
 */
export class ModGradRowsProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  variableNames = ['P'];
  uniforms = 'K : i32, Dv : i32, S : i32, N : i32, row0 : i32, row1 : i32,';
  size = true;
  outputComponent: number;
  variableComponents: number[];

  constructor(
    N: number,
    K: number,
    D: number,
    private readonly J: 1 | 2,
    vec: 1 | 4,
  ) {
    this.outputShape = [N, K, D];
    this.outputComponent = vec;
    this.variableComponents = [vec];
    this.dispatchLayout = { x: [0, 1, 2] };
    this.dispatch = [Math.ceil((N * K * D) / vec / 256), 1, 1];
    this.shaderKey = `t2md_mod_grad_rows_j${J}_v${vec}`;
  }

  getUserCode(): string {
    return `${vectorPrelude(this.outputComponent as 1 | 4)}
fn main(index : i32) {
  if (index >= uniforms.size) { return; }
  let d = index % uniforms.Dv;
  let k = (index / uniforms.Dv) % uniforms.K;
  let n = index / (uniforms.Dv * uniforms.K);
  var j = -1;
  if (k == uniforms.row0) { j = 0; }
  ${this.J === 2 ? 'if (k == uniforms.row1) { j = 1; }' : ''}
  var acc = T(0.0);
  if (j >= 0) {
    for (var s = 0; s < uniforms.S; s = s + 1) { acc = acc + P[((s * uniforms.N + n) * ${this.J} + j) * uniforms.Dv + d]; }
  }
  result[index] = acc;
}`;
  }
}
