/**
 * WGSL programs of the chunked SSD algorithm. Most passes are batched 64×64-tiled matmuls with
 * problem-specific loaders, so one generator (`GemmProgram`) builds them: each thread owns a 4×4
 * (256 threads per workgroup, the default), 8×4, 4×8 or 8×8 micro-tile (SsdScanOptions.gemmTile), K
 * staged through workgroup memory 16 at a time and read back as vec4.
 * Shapes travel as uniforms (one struct for every program); only the loaders are baked into the WGSL,
 * and the shader key names the program.
 */
import type { ProgramUniform, WebGPUProgramSpec } from '@t2md/core';
import type { SsdGemmTile } from './types.js';

/** Uniforms shared by every SSD program (dims, flags, GEMM tiling). */
export const SSD_UNIFORMS =
  'Bz : i32, Lq : i32, Hh : i32, Pp : i32, Gg : i32, Nn : i32, Qc : i32, Nc : i32, Lp : i32, flags : i32, dtMin : f32, dtMax : f32, gM : i32, gN : i32, gTm : i32, gTn : i32, gTot : i32, aux : i32,';

export const F_SOFTPLUS = 1;
export const F_CLAMP = 2;
export const F_HASMAX = 4;
export const F_HASD = 8;
export const F_DCHAN = 16;
export const F_HASZ = 32;
export const F_HASBIAS = 64;
export const F_HASINIT = 128;

export interface SsdGeom {
  Bz: number;
  L: number;
  H: number;
  P: number;
  G: number;
  N: number;
  Q: number;
  Nc: number;
  Lp: number;
  flags: number;
  dtMin: number;
  dtMax: number;
  /** The GEMM passes' micro-tile (SsdScanOptions.gemmTile): baked into their WGSL and shader keys, not a uniform. */
  tile: SsdGemmTile;
}

/** The uniform values, in SSD_UNIFORMS order. */
export function ssdUniforms(
  g: SsdGeom,
  gemm: { M: number; N: number; Tm: number; Tn: number; Tot: number } | null,
  aux = 0,
): ProgramUniform[] {
  const i = (v: number): ProgramUniform => ({ type: 'int32', data: [v] });
  const f = (v: number): ProgramUniform => ({ type: 'float32', data: [v] });
  const gm = gemm ?? { M: 0, N: 0, Tm: 0, Tn: 0, Tot: 0 };
  return [
    i(g.Bz),
    i(g.L),
    i(g.H),
    i(g.P),
    i(g.G),
    i(g.N),
    i(g.Q),
    i(g.Nc),
    i(g.Lp),
    i(g.flags),
    f(g.dtMin),
    f(Number.isFinite(g.dtMax) ? g.dtMax : 3.0e38),
    i(gm.M),
    i(gm.N),
    i(gm.Tm),
    i(gm.Tn),
    i(gm.Tot),
    i(aux),
  ];
}

/** Index helpers (uniforms only) and guarded loaders (each needs its input bound under that name). */
const INDEX = `
fn xIdx(b : i32, t : i32, h : i32, p : i32) -> i32 { return ((b * uniforms.Lq + t) * uniforms.Hh + h) * uniforms.Pp + p; }
fn bcIdx(b : i32, t : i32, g : i32, n : i32) -> i32 { return ((b * uniforms.Lq + t) * uniforms.Gg + g) * uniforms.Nn + n; }
fn stBase(b : i32, c : i32, h : i32) -> i32 { return ((b * uniforms.Nc + c) * uniforms.Hh + h) * uniforms.Pp * uniforms.Nn; }
fn hpBase(b : i32, c : i32, h : i32) -> i32 { return ((b * (uniforms.Nc + 1) + c) * uniforms.Hh + h) * uniforms.Pp * uniforms.Nn; }
fn cbIdx(b : i32, c : i32, g : i32, i : i32, j : i32) -> i32 { return (((b * uniforms.Nc + c) * uniforms.Gg + g) * uniforms.Qc + i) * uniforms.Qc + j; }
fn hasFlag(f : i32) -> bool { return (uniforms.flags & f) != 0; }
fn sigm(v : f32) -> f32 {
  if (v >= 0.0) { return 1.0 / (1.0 + exp(-v)); }
  let e = exp(v);
  return e / (1.0 + e);
}
fn log1pSmall(u : f32) -> f32 {
  if (u < 1e-3) { return u * (1.0 - u * (0.5 - u / 3.0)); }
  return log(1.0 + u);
}
// dt' = clamp(softplus?(v)) and d dt' / d v (0 where clamped); softplus(v) = v above 20 as torch
fn procDt(v0 : f32) -> vec2<f32> {
  var v = v0;
  var d = 1.0;
  if (hasFlag(${F_SOFTPLUS}) && v <= 20.0) {
    d = sigm(v);
    if (v > 0.0) { v = v + log1pSmall(exp(-v)); } else { v = log1pSmall(exp(v)); }
  }
  if (hasFlag(${F_CLAMP})) {
    if (v < uniforms.dtMin) { return vec2<f32>(uniforms.dtMin, 0.0); }
    if (hasFlag(${F_HASMAX}) && v > uniforms.dtMax) { return vec2<f32>(uniforms.dtMax, 0.0); }
  }
  return vec2<f32>(v, d);
}
`;

const LOADERS: Record<string, string> = {
  xIn: `fn ldX(b : i32, t : i32, h : i32, p : i32) -> f32 { if (t >= uniforms.Lq) { return 0.0; } return xIn[xIdx(b, t, h, p)]; }`,
  dyg: `fn ldDy(b : i32, t : i32, h : i32, p : i32) -> f32 { if (t >= uniforms.Lq) { return 0.0; } return dyg[xIdx(b, t, h, p)]; }`,
  bIn: `fn ldB(b : i32, t : i32, g : i32, n : i32) -> f32 { if (t >= uniforms.Lq) { return 0.0; } return bIn[bcIdx(b, t, g, n)]; }`,
  cIn: `fn ldC(b : i32, t : i32, g : i32, n : i32) -> f32 { if (t >= uniforms.Lq) { return 0.0; } return cIn[bcIdx(b, t, g, n)]; }`,
  dtc: `fn dtpAt(b : i32, h : i32, t : i32) -> f32 { return dtc[(b * uniforms.Hh + h) * uniforms.Lp + t]; }
fn csAt(b : i32, h : i32, t : i32) -> f32 { return dtc[((uniforms.Bz + b) * uniforms.Hh + h) * uniforms.Lp + t]; }`,
  dIn: `fn dVal(h : i32, p : i32) -> f32 {
  if (!hasFlag(${F_HASD})) { return 0.0; }
  if (hasFlag(${F_DCHAN})) { return dIn[h * uniforms.Pp + p]; }
  return dIn[h];
}`,
};

function prelude(vars: readonly string[]): string {
  return INDEX + vars.map((v) => LOADERS[v] ?? '').join('\n');
}

/** Phony reads keep every input (and the uniforms) in the pipeline's auto layout, used or not. */
function touch(vars: readonly string[]): string {
  return ['_ = uniforms.Bz;', ...vars.map((v) => `_ = ${v}[0];`)].join(' ');
}

const BASE = {
  workgroupSize: [256, 1, 1] as [number, number, number],
  uniforms: SSD_UNIFORMS,
};

/** Linear workgroup id (tfjs may fold a long 1-D dispatch into 2-D/3-D). */
const WID = 'i32(workgroupId.x + workgroupId.y * numWorkgroups.x + workgroupId.z * numWorkgroups.x * numWorkgroups.y)';

function hashText(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return `${(h >>> 0).toString(36)}${s.length}`;
}

/** A plain per-element program: `body` runs for index < count with `result` as output. */
export class MapProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize = BASE.workgroupSize;
  uniforms = SSD_UNIFORMS;
  variableNames: string[];
  private readonly body: string;
  private readonly count: string;
  private readonly decls: string;

  constructor(key: string, vars: string[], outputShape: number[], threads: number, count: string, body: string, decls = '') {
    // constants baked into the WGSL (count, offsets) are part of the key: pipelines are cached by it
    this.shaderKey = `t2md_ssd_${key}_${hashText(count + body + decls)}`;
    this.variableNames = vars;
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.max(1, Math.ceil(threads / 256)), 1, 1];
    this.count = count;
    this.body = body;
    this.decls = decls;
  }

  getUserCode(): string {
    return `${prelude(this.variableNames)}
${this.decls}
fn main(index : i32) {
  ${touch(this.variableNames)}
  if (index >= ${this.count}) { return; }
  ${this.body}
}`;
  }
}

/** One K phase of a GEMM: acc[m][n] += Σ_k A(m, k) B(k, n), optionally in segments scaled per element. */
export interface GemmPhase {
  /** Uniform loop bound on k within a segment. */
  kMax: string;
  /** Per-tile bounds (may use m0, n0 and batch variables): tiles outside [kBeg, kEnd) are skipped. */
  kBeg?: string;
  kEnd?: string;
  /** Number of K segments and their length (uniform); k = s * segLen + kl. */
  nseg?: string;
  segLen?: string;
  /** Statements run at the start of each segment (may use s). */
  segDecl?: string;
  /** A(m, k) and B(k, n): WGSL expressions of m / n, k, kl, s and the batch variables. */
  a: string;
  b: string;
  /** Which index runs fastest in memory: 'km' = m contiguous, 'mk' = k contiguous; likewise for B. */
  aLayout: 'km' | 'mk';
  bLayout: 'kn' | 'nk';
  /** Scale of each segment's partial sum, an expression of m, n, s. */
  scale?: string;
  /**
   * A recurrence over the segments: acc = carry · acc + (scale ·) partial after each segment (an
   * expression of m, n, s), then `segEpilogue` writes `v` = acc for element (m, n) (both in range).
   */
  carry?: string;
  segEpilogue?: string;
  /**
   * Whether segment s does any work (an expression of s and the batch variables): the segment loop
   * runs `nseg` times, which must be uniform (workgroupBarrier), and skips the dead ones' loads and sums.
   */
  segLive?: string;
}

export interface GemmBody {
  /** Statements defining the batch variables from `bat`. */
  batchDecl: string;
  /** Optional per-tile liveness (e.g. lower-triangular tiles only). */
  tileLive?: string;
  phases: GemmPhase[];
  /** Statements writing `v` for element (m, n) (both in range). */
  epilogue: string;
}

export interface GemmSize {
  M: number;
  N: number;
  batch: number;
}

/**
 * How a GemmProgram splits its 64×64 output tile over threads: each thread owns TM rows × TN columns,
 * as TM/4 × TN/4 vec4 strips `WY` vec4-rows / `WX` vec4-columns apart (64/TM × 64/TN threads), so one
 * vec4 read of A and one of B per strip pair feed 16 FMAs. `pad` gives each K-row of the workgroup
 * arrays one extra vec4: the 'mk' / 'nk' loaders write 16 consecutive k of one row from 16 adjacent
 * threads, 64 floats apart, all in one memory bank (a 16-way conflict); 68 apart is 2-way.
 */
interface GemmTiling {
  TM: number;
  TN: number;
  pad: boolean;
}

const TILINGS: Record<SsdGemmTile, GemmTiling> = {
  '4x4': { TM: 4, TN: 4, pad: false },
  '4x4p': { TM: 4, TN: 4, pad: true },
  '8x4': { TM: 8, TN: 4, pad: true },
  '4x8': { TM: 4, TN: 8, pad: true },
  '8x8': { TM: 8, TN: 8, pad: true },
};

/**
 * A batched 64×64-tiled GEMM with problem-specific loaders (GemmBody), K staged through workgroup
 * memory 16 at a time. `tile` (SsdScanOptions.gemmTile) picks the micro-tile of each thread: '4x4' is
 * 256 threads of 4×4 (the original kernel); '8x4' / '4x8' 128 threads, '8x8' 64 threads, which read
 * workgroup memory half as often per FMA (the usual way to speed up an f32 GEMM without matrix units;
 * issue 23). Every tile sums each output over k in the same order, so all give the same sums.
 */
export class GemmProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms = SSD_UNIFORMS;
  variableNames: string[];
  readonly tiles: { M: number; N: number; Tm: number; Tn: number; Tot: number };
  private readonly body: GemmBody;
  private readonly tiling: GemmTiling;

  constructor(key: string, vars: string[], outputShape: number[], size: GemmSize, body: GemmBody, tile: SsdGemmTile) {
    this.tiling = TILINGS[tile];
    // the original tile keeps its name: profiles stay comparable with earlier runs
    this.shaderKey = `t2md_ssd_gemm_${key}${tile === '4x4' ? '' : `_t${tile}`}`;
    this.variableNames = vars;
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    const Tm = Math.ceil(size.M / 64);
    const Tn = Math.ceil(size.N / 64);
    this.tiles = { M: size.M, N: size.N, Tm, Tn, Tot: Tm * Tn * size.batch };
    this.dispatch = [this.tiles.Tot, 1, 1];
    this.workgroupSize = [(64 / this.tiling.TM) * (64 / this.tiling.TN), 1, 1];
    this.body = body;
  }

  getUserCode(): string {
    const { batchDecl, tileLive, phases, epilogue } = this.body;
    const { TM, TN, pad } = this.tiling;
    const WX = 64 / TN; // threads along n
    const WY = 64 / TM; // threads along m
    const NT = WX * WY;
    const S = pad ? 17 : 16; // vec4s per K-row of As / Bs
    const range = (n: number) => Array.from({ length: n }, (_, i) => i);
    const rowsM = range(TM); // row i of a thread: m = m0 + (ty + (i >> 2)·WY)·4 + (i & 3)
    const stripsN = range(TN / 4); // strip t of a thread: n = n0 + (tx + t·WX)·4 + j
    const mOf = (i: number) => `m0 + (ty + ${(i >> 2) * WY}) * 4 + ${i & 3}`;
    const nOf = (t: number) => `n0 + (tx + ${t * WX}) * 4 + j`;
    const acc = (name: string, i: number, t: number) => `${name}${i}_${t}`;
    const decl = (name: string) => rowsM.flatMap((i) => stripsN.map((t) => `var ${acc(name, i, t)} = vec4<f32>(0.0);`)).join(' ');
    // 64×16 elements of each operand per K-tile, 1024 / NT per thread; adjacent threads take adjacent
    // elements along the operand's contiguous axis
    const load = (name: 'As' | 'Bs', layout: 'km' | 'mk' | 'kn' | 'nk', ax: 'm' | 'n', expr: string, bound: string) => {
      const [mn, kk] = layout === 'km' || layout === 'kn' ? ['e & 63', 'e >> 6'] : ['e >> 4', 'e & 15'];
      const one = (e: string) => `{
            let e = ${e};
            let ${ax}${ax} = ${mn};
            let kk = ${kk};
            let ${ax} = ${ax}0 + ${ax}${ax};
            let kl = k0 + kk;
            var v = 0.0;
            if (${ax} < ${bound} && kl < kEnd) { let k = s * segLen + kl; v = ${expr}; }
            ${name}[kk * ${S} + (${ax}${ax} >> 2)][${ax}${ax} & 3] = v;
          }`;
      // written out at 256 threads (4 per thread, as the original kernel); a loop below that: 32 written-out
      // loads made SwiftShader's compiler take over 20 GB, and a GPU's compiler unrolls a loop of 8 or 16
      return NT < 256
        ? `for (var r = 0; r < ${1024 / NT}; r++) ${one(`lid + ${NT} * r`)}`
        : range(1024 / NT)
            .map((r) => one(`lid + ${NT * r}`))
            .join('\n');
    };
    const fma = (name: string) => {
      const lines: string[] = [];
      for (const s of range(TM / 4)) lines.push(`let a${s} = As[kk * ${S} + ty + ${s * WY}];`);
      for (const t of stripsN) lines.push(`let b${t} = Bs[kk * ${S} + tx + ${t * WX}];`);
      for (const i of rowsM) {
        const a = `a${i >> 2}.${'xyzw'[i & 3]}`;
        lines.push(stripsN.map((t) => `${acc(name, i, t)} += ${a} * b${t};`).join(' '));
      }
      return `for (var kk = 0; kk < 16; kk++) {
            ${lines.join('\n            ')}
          }`;
    };
    // statements for each of the thread's outputs (m, n) in range, `v` its value: one j loop per row,
    // all strips in its body (a loop per strip made SwiftShader's compiler take gigabytes at 4x8)
    const each = (guard: string, stmt: (i: number, t: number) => string) =>
      rowsM
        .map(
          (i) => `{ let m = ${mOf(i)};
      if (m < uniforms.gM${guard}) {
        for (var j = 0; j < 4; j++) {
          ${stripsN.map((t) => `{ let n = ${nOf(t)}; if (n < uniforms.gN) { ${stmt(i, t)} } }`).join('\n          ')}
        }
      } }`,
        )
        .join('\n');
    const phase = (p: GemmPhase) => {
      const split = p.scale != null || p.carry != null;
      const name = split ? 'p' : 'acc';
      const combine = (i: number, t: number) => {
        const [a, q] = [`${acc('acc', i, t)}[j]`, `${acc('p', i, t)}[j]`];
        return p.carry != null
          ? `${a} = (${p.carry}) * ${a} + ${p.scale != null ? `(${p.scale}) * ` : ''}${q}; let v = ${a}; ${p.segEpilogue ?? ''}`
          : `${a} += (${p.scale}) * ${q};`;
      };
      const segLive = p.segLive != null ? ` && (${p.segLive})` : '';
      return `{
      let kBeg = ${p.kBeg ?? '0'};
      let segLen = ${p.segLen ?? '0'};
      let kEnd = ${p.kEnd ?? p.kMax};
      for (var s = 0; s < ${p.nseg ?? '1'}; s++) {
        ${p.segDecl ?? ''}
        ${split ? decl('p') : ''}
        for (var k0 = 0; k0 < ${p.kMax}; k0 += 16) {
          let act = live && k0 + 16 > kBeg && k0 < kEnd${segLive};
          if (act) {
            ${load('As', p.aLayout, 'm', p.a, 'uniforms.gM')}
            ${load('Bs', p.bLayout, 'n', p.b, 'uniforms.gN')}
          }
          workgroupBarrier();
          if (act) {
            ${fma(name)}
          }
          workgroupBarrier();
        }
        ${split ? each(` && live${segLive}`, combine) : ''}
      }
    }`;
    };
    return `${prelude(this.variableNames)}
var<workgroup> As : array<vec4<f32>, ${16 * S}>;
var<workgroup> Bs : array<vec4<f32>, ${16 * S}>;
fn main(index : i32) {
  ${touch(this.variableNames)}
  let lid = i32(localIndex);
  let wid = ${WID};
  let tn = wid % uniforms.gTn;
  let tm = (wid / uniforms.gTn) % uniforms.gTm;
  let bat = min(wid / (uniforms.gTn * uniforms.gTm), uniforms.gTot / (uniforms.gTn * uniforms.gTm) - 1);
  let m0 = tm * 64;
  let n0 = tn * 64;
  let tx = lid % ${WX};
  let ty = lid / ${WX};
  ${batchDecl}
  let live = wid < uniforms.gTot && (${tileLive ?? 'true'});
  ${decl('acc')}
  ${phases.map(phase).join('\n')}
  if (live) {
    ${each('', (i, t) => `let v = ${acc('acc', i, t)}[j]; ${epilogue}`)}
  }
}`;
  }
}

/** Batch (b, c, h): one chunk of one head. */
export const BATCH_CH = `let b = bat / (uniforms.Nc * uniforms.Hh);
  let c = (bat / uniforms.Hh) % uniforms.Nc;
  let h = bat % uniforms.Hh;
  let hpg = uniforms.Hh / uniforms.Gg;
  let g = h / hpg;
  let t0 = c * uniforms.Qc;`;

/** Batch (b, c, g): one chunk of one group. */
export const BATCH_CG = `let b = bat / (uniforms.Nc * uniforms.Gg);
  let c = (bat / uniforms.Gg) % uniforms.Nc;
  let g = bat % uniforms.Gg;
  let hpg = uniforms.Hh / uniforms.Gg;
  let t0 = c * uniforms.Qc;`;

/**
 * Reverse state passing with a per-chunk reduction exp(cs_last) <G_{c+1}, H_c> (one workgroup of 256
 * threads per (b, h, slice of P·N)).
 */
export class BackPassProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_ssd_backpass';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize = BASE.workgroupSize;
  uniforms = SSD_UNIFORMS;
  variableNames = ['st', 'hp', 'dtc', 'dfin'];

  constructor(size: number, workgroups: number) {
    this.outputShape = [size];
    this.dispatchLayout = { x: [0] };
    this.dispatch = [workgroups, 1, 1];
  }

  getUserCode(): string {
    return `${prelude(this.variableNames)}
var<workgroup> red : array<f32, 256>;
fn main(index : i32) {
  ${touch(this.variableNames)}
  let lid = i32(localIndex);
  let wid = ${WID};
  let PN = uniforms.Pp * uniforms.Nn;
  let nW = uniforms.aux;
  let live = wid < uniforms.gTot;
  let w = wid % nW;
  let bh = min(wid / nW, uniforms.Bz * uniforms.Hh - 1);
  let h = bh % uniforms.Hh;
  let b = bh / uniforms.Hh;
  let pn = w * 256 + lid;
  let ok = live && pn < PN;
  let eOff = uniforms.Bz * (uniforms.Nc + 1) * uniforms.Hh * PN;
  var s = 0.0;
  if (ok) {
    s = dfin[bh * PN + pn];
    result[hpBase(b, uniforms.Nc, h) + pn] = s;
  }
  for (var c = uniforms.Nc - 1; c >= 0; c--) {
    var e = 0.0;
    if (ok) { e = s * hp[hpBase(b, c, h) + pn]; }
    red[lid] = e;
    workgroupBarrier();
    for (var k = 128; k > 0; k = k >> 1u) {
      if (lid < k) { red[lid] = red[lid] + red[lid + k]; }
      workgroupBarrier();
    }
    if (lid == 0 && live) { result[eOff + ((b * uniforms.Nc + c) * uniforms.Hh + h) * nW + w] = red[0] * exp(csAt(b, h, c * uniforms.Qc + uniforms.Qc - 1)); }
    workgroupBarrier();
    if (ok) {
      s = exp(csAt(b, h, c * uniforms.Qc + uniforms.Qc - 1)) * s + st[stBase(b, c, h) + pn];
      result[hpBase(b, c, h) + pn] = s;
    }
  }
}`;
  }
}

/**
 * out[s·M + m] = Σ over r in slice s (gTn rows each) Σ_k f(base + (r M + m) K + k), one workgroup per
 * (m, s): with S = 1 the whole reduction; with S > 1 its first pass, a second one (S = 1 over the slices)
 * adding them. A dt-bias or D gradient sums B·L·P products into a handful of outputs: with one workgroup
 * each, a handful of SMs did all of it (~30 ms of a batch-512 backward on the H200).
 */
export class ReduceProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize = BASE.workgroupSize;
  uniforms = SSD_UNIFORMS;
  variableNames: string[];

  /** Uniform reuse: gM = M, gN = K, gTm = R, gTn = rows per slice, gTot = S, aux = base offset. */
  /** @param outShape the output's shape: S·M elements (S = 1: the reduction's own shape) */
  constructor(vars: string[], outShape: number[], M: number, S: number) {
    this.variableNames = vars;
    this.shaderKey = `t2md_ssd_reduce_${vars.length}`;
    this.outputShape = outShape;
    this.dispatchLayout = { x: [0] };
    this.dispatch = [S * M, 1, 1];
  }

  getUserCode(): string {
    const [a, b] = this.variableNames;
    const term = b ? `${a}[i] * ${b}[i]` : `${a}[i]`;
    return `${INDEX}
var<workgroup> red : array<f32, 256>;
fn main(index : i32) {
  ${touch(this.variableNames)}
  let lid = i32(localIndex);
  let wid = ${WID};
  let M = uniforms.gM;
  let K = uniforms.gN;
  let live = wid < M * uniforms.gTot;
  let m = min(wid, M * uniforms.gTot - 1) % M;
  let s = min(wid, M * uniforms.gTot - 1) / M;
  let r0 = s * uniforms.gTn;
  let r1 = min(r0 + uniforms.gTn, uniforms.gTm);
  let total = max(0, r1 - r0) * K;
  var acc = 0.0;
  for (var j = lid; j < total; j += 256) {
    let r = r0 + j / K;
    let i = uniforms.aux + (r * M + m) * K + (j - (j / K) * K);
    acc += ${term};
  }
  red[lid] = acc;
  workgroupBarrier();
  for (var k = 128; k > 0; k = k >> 1u) {
    if (lid < k) { red[lid] = red[lid] + red[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0 && live) { result[s * M + m] = red[0]; }
}`;
  }
}

/** Lanes per row of RowDotsProgram: 16 adjacent lanes read 64 adjacent bytes of a row. */
const ROW_LANES = 16;

/**
 * Four dot products over P per (b, t, h) row of `[B·L·H, P]` inputs, for the backward's d log-decay:
 * r = dyg·ys, ust = x·dxdSt, udg = x·dxdDg, xdy = x·dyg, written as result[k·BLH + row]. 16 lanes
 * share a row (lane ℓ takes p = ℓ, ℓ + 16, …) and sum in workgroup memory, so a warp's loads are
 * contiguous: one thread per row, walking its own row, read each 32-byte sector for 4 bytes of it.
 */
export class RowDotsProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_ssd_rowdots';
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize = BASE.workgroupSize;
  uniforms = SSD_UNIFORMS;
  variableNames = ['dyg', 'ys', 'xIn', 'dxdSt', 'dxdDg'];

  /** @param rows B·L·H */
  constructor(rows: number) {
    this.outputShape = [4 * rows];
    this.dispatch = [Math.max(1, Math.ceil((rows * ROW_LANES) / 256)), 1, 1];
  }

  getUserCode(): string {
    return `${INDEX}
var<workgroup> red : array<f32, 1024>;
fn main(index : i32) {
  ${touch(this.variableNames)}
  let lid = i32(localIndex);
  let lane = lid % ${ROW_LANES};
  let rows = uniforms.Bz * uniforms.Lq * uniforms.Hh;
  let row = ${WID} * ${256 / ROW_LANES} + lid / ${ROW_LANES};
  var r = 0.0;
  var ust = 0.0;
  var udg = 0.0;
  var xdy = 0.0;
  if (row < rows) {
    let base = row * uniforms.Pp;
    for (var p = lane; p < uniforms.Pp; p += ${ROW_LANES}) {
      let xv = xIn[base + p];
      let dy = dyg[base + p];
      r += dy * ys[base + p];
      ust += xv * dxdSt[base + p];
      udg += xv * dxdDg[base + p];
      xdy += xv * dy;
    }
  }
  red[lid] = r;
  red[256 + lid] = ust;
  red[512 + lid] = udg;
  red[768 + lid] = xdy;
  workgroupBarrier();
  for (var k = ${ROW_LANES / 2}; k > 0; k = k >> 1u) {
    if (lane < k) {
      for (var j = 0; j < 1024; j += 256) { red[j + lid] = red[j + lid] + red[j + lid + k]; }
    }
    workgroupBarrier();
  }
  if (lane == 0 && row < rows) {
    result[row] = red[lid];
    result[rows + row] = red[256 + lid];
    result[2 * rows + row] = red[512 + lid];
    result[3 * rows + row] = red[768 + lid];
  }
}`;
  }
}
