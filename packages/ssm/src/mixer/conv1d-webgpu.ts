import type { ProgramUniform, WebGPUProgramSpec } from '@t2md/core';

/**
 * WGSL for the fused causal depthwise conv1d + SiLU of the Mamba-2 mixer and its gradient.
 * x, dy `[B, L, C]` are read as vectors of VEC = 4 channels when C % 4 == 0 (else 1); the weight
 * `[C, 1, K]` is read as scalars (K consecutive taps a channel) and the bias `[C]` as vectors. K and VEC
 * are baked into the WGSL (and the shader key), with TT (rows per thread of the row-block programs);
 * shapes travel as uniforms.
 *
 * Passes and what each moves (Bytes = B·L·C·4):
 * - forward: y = silu(pre), pre[t] = bias + Σ_k w[k] x[t + k − (K−1)]; each thread TT consecutive rows
 *   of one channel vector (TT = 4: 7 loads of x for 4 outputs where one row a thread needs 16, which
 *   would lean on the caches): reads x ≈ once, writes y.
 * - dx: each thread TT rows. It recomputes pre at the TT + K − 1 rows that read its x rows, from the
 *   TT + 2K − 2 rows of x around them, rather than the forward saving pre: saving would add a B·L·C
 *   write to the forward and hold B·L·C floats until the backward, while the backward reads the same
 *   1× Bytes either way (x instead of pre); the recompute is (TT + K − 1)·K FMAs and TT + K − 1
 *   sigmoids per TT outputs, free in a memory-bound pass. Reads x and dy ≈ once each, writes dx.
 * - dweight, dbias partials: thread (segment, channel vector) walks R consecutive rows of the B·L,
 *   keeping the last K rows of x in registers (one new load a row), and sums g·x per tap and g, where
 *   g = dy·silu'(pre). Reads x and dy once, writes `[P, K + 1, C]` partials (P = B·L / R segments,
 *   chosen so P·C/VEC threads fill the GPU: ~1–3% of Bytes).
 * - reduce: one 64-thread workgroup per output vector tree-sums its column of the P partials.
 * So the whole backward reads x and dy twice and writes dx once, never one thread looping over B·L.
 *
 * The forward, dx and partial programs are flat (one item per thread, `main(index)`): tfjs folds a
 * dispatch of more than 65,535 workgroups into 2-D/3-D and its `getGlobalIndex()` (the `index` passed
 * to main) is then `(workgroupId.z·nx·ny + workgroupId.y·nx + workgroupId.x)·workgroupSize + localIndex`,
 * so index is linear either way; the folded grid is rounded up, hence every guard on `uniforms.n`.
 */

/** Threads per workgroup of the flat programs by default. */
export const CONV_WG = 256;
/** Threads per workgroup of the reduce program (a power of two). */
const RED_WG = 64;

/** Linear workgroup id (tfjs folds a dispatch of more than 65,535 workgroups into 2-D / 3-D). */
const WID = 'i32(workgroupId.x + workgroupId.y * numWorkgroups.x + workgroupId.z * numWorkgroups.x * numWorkgroups.y)';

/** The vector width for C channels. */
export function convVec(C: number): 1 | 4 {
  return C % 4 === 0 ? 4 : 1;
}

/** Prelude: the value type, K, a stable sigmoid over T and the weight-tap loader. */
function prelude(vec: 1 | 4, K: number): string {
  const wtap = vec === 4 ? 'return T(w[c * K + k], w[(c + 1) * K + k], w[(c + 2) * K + k], w[(c + 3) * K + k]);' : 'return w[c * K + k];';
  return `alias T = ${vec === 4 ? 'vec4<f32>' : 'f32'};
const VEC : i32 = ${vec};
const K : i32 = ${K};
// exp of -|v| only: no overflow for large |v| in either sign
fn sigm(v : T) -> T {
  let e = exp(-abs(v));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, v >= T(0.0));
}
// d silu / d pre
fn siluGrad(pre : T) -> T {
  let s = sigm(pre);
  return s * (1.0 + pre * (1.0 - s));
}
// weight taps k of channels c .. c + VEC - 1 (weight [C, 1, K])
fn wtap(c : i32, k : i32) -> T { ${wtap} }`;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * Shared fields of the flat programs over `n` items per dispatch: inputs read as vectors of VEC
 * channels except the weight `w` (scalars), and a shader key naming the pass and everything baked in.
 */
abstract class FlatProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames: string[];
  variableComponents: number[];
  outputComponent: number;
  uniforms = 'n : i32, L : i32, Cv : i32, R : i32, rows : i32, nTB : i32,';

  constructor(
    pass: string,
    inputs: string[],
    outputShape: number[],
    n: number,
    wg: number,
    protected readonly vec: 1 | 4,
    protected readonly K: number,
    keyExtra = '',
  ) {
    this.outputShape = outputShape;
    this.variableNames = inputs;
    this.variableComponents = inputs.map((x) => (x === 'w' ? 1 : vec));
    this.outputComponent = vec;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.workgroupSize = [wg, 1, 1];
    this.dispatch = [Math.max(1, Math.ceil(n / wg)), 1, 1];
    this.shaderKey = `t2md_conv_silu_${pass}_v${vec}_k${K}_w${wg}${keyExtra}`;
  }

  abstract getUserCode(): string;
}

/** A flat program over x `[B, L, C]` whose threads each take TT consecutive rows of one sequence. */
abstract class RowBlockProgram extends FlatProgram {
  constructor(
    pass: string,
    inputs: string[],
    shape: number[],
    K: number,
    wg: number,
    protected readonly TT: number,
  ) {
    super(pass, inputs, shape, rowBlockThreads(shape, TT).n, wg, convVec(shape[2]!), K, `_r${TT}`);
  }
}

/** The uniforms of the flat programs, in `FlatProgram.uniforms` order. */
export function convUniforms(u: { n: number; L: number; Cv: number; R?: number; rows?: number; nTB?: number }): ProgramUniform[] {
  return [u.n, u.L, u.Cv, u.R ?? 0, u.rows ?? 0, u.nTB ?? 0].map((v) => ({ type: 'int32' as const, data: [v] }));
}

/** Threads of a row-block program over x `[B, L, C]`: one per (b, block of TT rows, channel vector). */
export function rowBlockThreads([B, L, C]: number[], TT: number): { n: number; nTB: number; Cv: number } {
  const nTB = Math.ceil(L! / TT);
  const Cv = C! / convVec(C!);
  return { n: B! * nTB * Cv, nTB, Cv };
}

/**
 * WGSL opening `main` of a row-block program: the thread's rows t0 .. t0 + TT − 1 of one sequence and
 * channel vector cv, `base` the vector index of (b, t0, cv), then `xs{j} = x[t0 + j + d0]` for
 * j < count, zero outside [0, L).
 */
function rowBlockHead(d0: number, count: number): string {
  const loads = range(count).map((j) => {
    const d = j + d0;
    return `  var xs${j} = T(0.0);\n  if (t0 + ${d} >= 0 && t0 + ${d} < uniforms.L) { xs${j} = x[base + ${d} * uniforms.Cv]; }`;
  });
  return `fn main(index : i32) {
  if (index >= uniforms.n) { return; }
  let cv = index % uniforms.Cv;
  let q = index / uniforms.Cv;
  let tb = q % uniforms.nTB;
  let t0 = tb * TT;
  let base = ((q / uniforms.nTB) * uniforms.L + t0) * uniforms.Cv + cv;
  let c = cv * VEC;
  let b0 = bias[cv];
${loads.join('\n')}`;
}

/** `let wk{k} = wtap(c, k);` for every tap. */
const weightTaps = (K: number) =>
  range(K)
    .map((k) => `  let wk${k} = wtap(c, ${k});`)
    .join('\n');

/** `b0 + Σ_k wk{k} xs{u + k}`: the pre-activation of row t0 + u + d0 + (K − 1) from the window. */
const preOf = (u: number, K: number) =>
  `b0 + ${range(K)
    .map((k) => `wk${k} * xs${u + k}`)
    .join(' + ')}`;

/**
 * y = silu(causal conv(x)), each thread TT consecutive rows of one channel vector: TT + K − 1 loads of x
 * for TT outputs. Inputs x `[B, L, C]`, w `[C, 1, K]`, bias `[C]`.
 */
export class ConvSiluProgram extends RowBlockProgram {
  constructor(shape: number[], K: number, wg: number, TT: number) {
    super('fwd', ['x', 'w', 'bias'], shape, K, wg, TT);
  }

  getUserCode(): string {
    const { K, TT } = this;
    // xs{j} = x[t0 + j − (K−1)]; output row t0 + i reads xs{i} .. xs{i+K−1}
    const outs = range(TT).map(
      (i) => `  if (t0 + ${i} < uniforms.L) {
    let pre${i} = ${preOf(i, K)};
    result[base + ${i} * uniforms.Cv] = pre${i} * sigm(pre${i});
  }`,
    );
    return `${prelude(this.vec, K)}
const TT : i32 = ${TT};
${rowBlockHead(-(K - 1), TT + K - 1)}
${weightTaps(K)}
${outs.join('\n')}
}`;
  }
}

/**
 * dx[t] = Σ_k w[k] g[t + (K−1) − k] with g = dy·silu'(pre) (zero past L), each thread TT consecutive
 * rows: pre recomputed at the TT + K − 1 rows t0 .. t0 + TT + K − 2 from the TT + 2K − 2 rows of x
 * around them. Inputs x, w, bias, dy; output like x.
 */
export class ConvSiluGradXProgram extends RowBlockProgram {
  constructor(shape: number[], K: number, wg: number, TT: number) {
    super('dx', ['x', 'w', 'bias', 'dy'], shape, K, wg, TT);
  }

  getUserCode(): string {
    const { K, TT } = this;
    // xs{j} = x[t0 + j − (K−1)]; row t0 + u has its pre-activation from xs{u} .. xs{u+K−1}
    const gs = range(TT + K - 1).map(
      (u) => `  var g${u} = T(0.0);
  if (t0 + ${u} < uniforms.L) { g${u} = dy[base + ${u} * uniforms.Cv] * siluGrad(${preOf(u, K)}); }`,
    );
    // x row t0 + i reaches row t0 + i + (K−1) − k through tap k
    const outs = range(TT).map(
      (i) =>
        `  if (t0 + ${i} < uniforms.L) { result[base + ${i} * uniforms.Cv] = ${range(K)
          .map((k) => `wk${k} * g${i + K - 1 - k}`)
          .join(' + ')}; }`,
    );
    return `${prelude(this.vec, K)}
const TT : i32 = ${TT};
${rowBlockHead(-(K - 1), TT + 2 * K - 2)}
${weightTaps(K)}
${gs.join('\n')}
${outs.join('\n')}
}`;
  }
}

/**
 * Per-segment partial sums for dweight and dbias: thread (p, cv) sums over rows r in [p·R, (p+1)·R) ∩
 * [0, B·L) of g[r] x[r − (K−1) + k] (slot k < K) and g[r] (slot K), g = dy·silu'(pre), writing
 * partials `[P, K + 1, C]`. Inputs x, w, bias, dy; n = P·C/VEC.
 */
export class ConvSiluPartialProgram extends FlatProgram {
  constructor(P: number, shape: number[], K: number, wg: number) {
    const C = shape[2]!;
    const vec = convVec(C);
    super('dwb', ['x', 'w', 'bias', 'dy'], [P, K + 1, C], (P * C) / vec, wg, vec, K);
  }

  getUserCode(): string {
    const K = this.K;
    // xw{j} = x at row r − j (zero before the sequence start); before the loop it holds row r0 − 1 − j
    const init = range(K - 1).map((j) => `  var xw${j} = T(0.0);\n  if (t0 >= ${j + 1}) { xw${j} = x[(r0 - ${j + 1}) * Cv + cv]; }`);
    const shift = range(K - 1)
      .reverse()
      .map((j) => `    xw${j + 1} = xw${j};`);
    const reset = range(K - 1).map((j) => `xw${j + 1} = T(0.0);`);
    const pre = range(K)
      .map((k) => `wk${k} * xw${K - 1 - k}`)
      .join(' + ');
    const acc = range(K).map((k) => `    a${k} = a${k} + g * xw${K - 1 - k};`);
    const out = (slot: number, v: string) => `  result[(p * ${K + 1} + ${slot}) * Cv + cv] = ${v};`;
    return `${prelude(this.vec, K)}
fn main(index : i32) {
  if (index >= uniforms.n) { return; }
  let Cv = uniforms.Cv;
  let cv = index % Cv;
  let p = index / Cv;
  let c = cv * VEC;
${weightTaps(K)}
  let b0 = bias[cv];
  let r0 = p * uniforms.R;
  let r1 = min(r0 + uniforms.R, uniforms.rows);
  let t0 = r0 % uniforms.L;
  var t = t0;
${init.join('\n')}
  var xw${K - 1} = T(0.0);
${range(K)
  .map((k) => `  var a${k} = T(0.0);`)
  .join('\n')}
  var ab = T(0.0);
  for (var r = r0; r < r1; r++) {
${shift.join('\n')}
    xw0 = x[r * Cv + cv];
    if (t == 0) { ${reset.join(' ')} }
    let pre = b0 + ${pre};
    let g = dy[r * Cv + cv] * siluGrad(pre);
${acc.join('\n')}
    ab = ab + g;
    t = t + 1;
    if (t == uniforms.L) { t = 0; }
  }
${range(K)
  .map((k) => out(k, `a${k}`))
  .join('\n')}
${out(K, 'ab')}
}`;
  }
}

/**
 * Sums the `[P, K + 1, C]` partials over P: `wrt = 'w'` gives dweight `[C, 1, K]` (slots 0..K−1),
 * `wrt = 'b'` dbias `[C]` (slot K). One workgroup of 64 threads per output vector (slot, cv): the
 * threads stride over P, then a tree sum in workgroup memory. Out-of-range workgroups (of a folded
 * grid) only skip their write, so the barriers stay in uniform control flow.
 */
export class ConvSiluReduceProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [RED_WG, 1, 1];
  variableNames = ['part'];
  variableComponents: number[];
  outputComponent = 1;
  uniforms = 'P : i32, Cv : i32, nOut : i32,';
  private readonly vec: 1 | 4;

  constructor(
    C: number,
    private readonly K: number,
    private readonly wrt: 'w' | 'b',
  ) {
    this.vec = convVec(C);
    this.outputShape = wrt === 'w' ? [C, 1, K] : [C];
    this.variableComponents = [this.vec];
    this.dispatch = [(wrt === 'w' ? K : 1) * (C / this.vec), 1, 1];
    this.shaderKey = `t2md_conv_silu_reduce_${wrt}_v${this.vec}_k${K}`;
  }

  /** Uniforms for P partials over C channels. */
  programUniforms(P: number): ProgramUniform[] {
    return [P, this.outputShape[0]! / this.vec, this.dispatch[0]].map((v) => ({ type: 'int32' as const, data: [v] }));
  }

  getUserCode(): string {
    const K = this.K;
    const write =
      this.wrt === 'w'
        ? (i: number, v: string) => `result[(c + ${i}) * ${K} + slot] = ${v};`
        : (i: number, v: string) => `result[c + ${i}] = ${v};`;
    const writes = this.vec === 4 ? range(4).map((i) => write(i, `s[${i}]`)) : [write(0, 's')];
    return `alias T = ${this.vec === 4 ? 'vec4<f32>' : 'f32'};
var<workgroup> red : array<T, ${RED_WG}>;
fn main(index : i32) {
  let lid = i32(localIndex);
  let wid = ${WID};
  let live = wid < uniforms.nOut;
  let o = min(wid, uniforms.nOut - 1);
  let cv = o % uniforms.Cv;
  let slot = ${this.wrt === 'w' ? 'o / uniforms.Cv' : K};
  let c = cv * ${this.vec};
  let stride = ${K + 1} * uniforms.Cv;
  var acc = T(0.0);
  for (var p = lid; p < uniforms.P; p += ${RED_WG}) { acc = acc + part[p * stride + slot * uniforms.Cv + cv]; }
  red[lid] = acc;
  workgroupBarrier();
  for (var k = ${RED_WG / 2}; k > 0; k = k >> 1u) {
    if (lid < k) { red[lid] = red[lid] + red[lid + k]; }
    workgroupBarrier();
  }
  if (live && lid == 0) {
    let s = red[0];
    ${writes.join('\n    ')}
  }
}`;
  }
}
