/**
 * WGSL programs for memory-efficient attention (FlashAttention-2 style, f32).
 *
 * Layout shared by every program: one thread owns one "own" row (a query for the forward and dQ, a key
 * for dK and dV) and keeps that row's vectors in registers; the workgroup streams tiles of the "other"
 * side (keys/values, or queries/output grads) through workgroup memory, where every thread reads the
 * same address at once (a broadcast, no bank conflicts). Softmax statistics are per own row, so no
 * thread ever needs another thread's scores: no shared score tile, no reductions, no atomics.
 *
 * The row vectors are written out as separate variables (`q0 … q17` for head dim 72 in vec4s) rather
 * than arrays: a dynamically indexed array would live in local memory. Everything baked into the WGSL
 * (head dim, tile sizes, vector width, mask on/off) is in `shaderKey`; lengths travel as uniforms.
 */
import { check, type WebGPUProgramSpec } from '@t2md/core';

/** Tile sizes of one webgpu program. */
export interface ProgramTiles {
  /** Own rows per workgroup (= threads per workgroup). */
  rows: number;
  /** Streamed rows per tile held in workgroup memory (a multiple of `group`, at most `rows`). */
  tile: number;
  /** Streamed rows handled per unrolled step (one online-softmax update per group in the forward). */
  group: number;
}

/** Tile sizes of the forward and the backward programs (the `tiles` option of `attention` overrides them). */
export interface AttentionTiles extends ProgramTiles {
  /** Own rows per workgroup of the backward programs. */
  bwdRows: number;
  /** Group of the backward programs: they hold 3 row vectors each, so fewer live scores fit. */
  bwdGroup: number;
}

// Chosen on an H100 (bench/attention.ts, 16 heads x 72, f32, one process; bench/results/2026-11-25-h100-attention.json@5f2fd4c,
// since removed from the tree): forward at 16384 tokens, rows x tile x group: 128x32x4 54.8 ms, 128x32x8 62.4, 256x32x8 66.2,
// 128x16x8 65.3, 64x32x4 77.9, 64x32x8 ~102, 64x64x8 200, 32x32x8 246 (bigger groups hold more live scores: spills).
// Forward+backward at 4096 tokens, bwdRows x bwdGroup: 128x1 22.4 ms, 128x2 46.3, 64x2 47.7, 128x4 89.3,
// 128x8 111 — the backward holds three row vectors per thread, so even two live keys spill registers.
export const ATTENTION_TILES: Readonly<AttentionTiles> = { rows: 128, tile: 32, group: 4, bwdRows: 128, bwdGroup: 1 };

const TILE_KEYS = Object.keys(ATTENTION_TILES) as (keyof AttentionTiles)[];

/**
 * The defaults with `over` applied (benchmarks, and tests that cross tile edges on small shapes),
 * checked: positive integers, tile a multiple of group and bwdGroup and at most rows and bwdRows
 * (each workgroup loads a streamed tile with one row per thread). InputError otherwise.
 */
export function resolveAttentionTiles(over: Partial<AttentionTiles> = {}): AttentionTiles {
  check(
    over != null && typeof over === 'object',
    () => `attention option tiles must be an object of tile sizes, got ${String(over)}; leave it out for the defaults.`,
  );
  const given = JSON.stringify(over);
  const unknown = Object.keys(over).filter((k) => !(TILE_KEYS as string[]).includes(k));
  check(
    unknown.length === 0,
    () => `attention option tiles ${given}: unknown ${unknown.join(', ')}; the sizes are ${TILE_KEYS.join(', ')}.`,
  );
  const t: AttentionTiles = { ...ATTENTION_TILES, ...over };
  for (const k of TILE_KEYS) {
    check(
      Number.isInteger(t[k]) && t[k] >= 1,
      () => `attention option tiles ${given}: ${k} must be a positive integer, got ${String(t[k])}.`,
    );
  }
  check(
    t.tile % t.group === 0 && t.tile % t.bwdGroup === 0 && t.tile <= t.rows && t.tile <= t.bwdRows,
    () =>
      `attention option tiles ${given} gives ${JSON.stringify(t)}: tile must be a multiple of group and bwdGroup and at most rows and bwdRows.`,
  );
  return t;
}

/**
 * The tiles of the forward and backward programs, with the streamed tile shrunk until two
 * `[tile, dh]` f32 arrays (plus two per-row scalars) fit the adapter's workgroup memory. Throws when
 * even 1 row does not fit.
 */
export function tilesFor(dh: number, maxShared: number, tiles: AttentionTiles = ATTENTION_TILES): { fwd: ProgramTiles; bwd: ProgramTiles } {
  let tile = tiles.tile;
  const bytes = (n: number) => 2 * n * dh * 4 + 2 * n * 4;
  while (bytes(tile) > maxShared && tile > 1) tile = Math.max(1, tile >> 1);
  if (bytes(tile) > maxShared) {
    throw new Error(`attention: head dim ${dh} needs ${bytes(1)} bytes of workgroup memory per row; this adapter allows ${maxShared}.`);
  }
  return {
    fwd: { rows: tiles.rows, tile, group: Math.min(tiles.group, tile) },
    bwd: { rows: tiles.bwdRows, tile, group: Math.min(tiles.bwdGroup, tile) },
  };
}

/** -1e30 stands for -inf: exp(-1e30 - m) is exactly 0 and (-1e30) - (-1e30) is 0, never NaN. */
const NEG = '-1.0e30';
/** The log-sum-exp stored for a row whose keys are all masked: exp(s - BIG) = 0 for every key. */
export const LSE_EMPTY = 1.0e30;
const LSE_EMPTY_WGSL = '1.0e30';

/** How a row of `dh` floats is split into vectors. */
interface Vec {
  w: 1 | 4;
  nv: number;
  ty: string;
  zero: string;
  hsum: (x: string) => string;
}

function vecOf(dh: number, allow4 = true): Vec {
  const w = allow4 && dh % 4 === 0 ? 4 : 1;
  return w === 4
    ? { w, nv: dh / 4, ty: 'vec4<f32>', zero: 'vec4<f32>(0.0)', hsum: (x) => `dot(${x}, vec4<f32>(1.0))` }
    : { w, nv: dh, ty: 'f32', zero: '0.0', hsum: (x) => x };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** `var name0 : ty = zero; …` */
function declRow(vec: Vec, name: string): string {
  return range(vec.nv)
    .map((v) => `var ${name}${v} : ${vec.ty} = ${vec.zero};`)
    .join('\n  ');
}

/** `name0 = buf[base + 0] * mul; …` */
function loadRow(vec: Vec, name: string, buf: string, base: string, mul = ''): string {
  return range(vec.nv)
    .map((v) => `${name}${v} = ${buf}[${base} + ${v}]${mul};`)
    .join('\n    ');
}

/**
 * `let s = Σ_v dot(own_v, sh[row + v]);` with several independent accumulators, so the sum is not one
 * long chain of dependent FMAs (latency bound) but a few short ones.
 */
function dotRow(vec: Vec, out: string, own: string, sh: string, row: string): string {
  const nacc = Math.min(vec.w === 4 ? 2 : 4, vec.nv);
  const acc = range(nacc).map((a) => `${out}_a${a}`);
  const lines: string[] = [];
  for (let v = 0; v < vec.nv; v++) {
    const a = acc[v % nacc];
    lines.push(v < nacc ? `var ${a} = ${own}${v} * ${sh}[${row} + ${v}];` : `${a} += ${own}${v} * ${sh}[${row} + ${v}];`);
  }
  lines.push(`let ${out} = ${vec.hsum(acc.join(' + '))};`);
  return lines.join('\n      ');
}

/** `acc_v = acc_v * alpha + Σ_j p_j * sh[row_j + v]` for every vector v of the row. */
function axpyRows(vec: Vec, acc: string, terms: { p: string; row: string }[], sh: string, alpha?: string): string {
  return range(vec.nv)
    .map((v) => {
      const sum = terms.map((t) => `${t.p} * ${sh}[${t.row} + ${v}]`).join(' + ');
      return alpha ? `${acc}${v} = ${acc}${v} * ${alpha} + ${sum};` : `${acc}${v} += ${sum};`;
    })
    .join('\n      ');
}

/** `buf[base + v*w + c] = name_v[c] * mul` written as scalars (for a component-1 output). */
function storeRowScalars(vec: Vec, name: string, base: string, mul: string): string {
  return range(vec.nv)
    .map((v) =>
      vec.w === 4
        ? range(4)
            .map((c) => `result[${base} + ${v * 4 + c}] = ${name}${v}[${c}] * ${mul};`)
            .join(' ')
        : `result[${base} + ${v}] = ${name}${v} * ${mul};`,
    )
    .join('\n    ');
}

function storeRow(vec: Vec, name: string, base: string, mul: string): string {
  return range(vec.nv)
    .map((v) => `result[${base} + ${v}] = ${name}${v} * ${mul};`)
    .join('\n    ');
}

/** Workgroup index over a possibly reshaped (2-D/3-D) dispatch, and the tile / (b, h) it stands for. */
const WG_INDEX = `
  let wgIndex = i32(workgroupId.x + workgroupId.y * numWorkgroups.x + workgroupId.z * numWorkgroups.x * numWorkgroups.y);
  let wgActive = wgIndex < uniforms.nTiles * uniforms.BH;
  let tileIdx = select(0, wgIndex % uniforms.nTiles, wgActive);
  let bh = select(0, wgIndex / uniforms.nTiles, wgActive);
  let b = bh / uniforms.H;
  let h = bh % uniforms.H;
  let tid = i32(localId.x);`;

/**
 * Where rows live: `at(L, b, h, t)` is the first vector of row t of head h of batch entry b in a buffer
 * with layout L = (stride of b, stride of h, stride of t, offset), in vectors. `[B, H, L, Dh]` tensors
 * are (H·L·NV, L·NV, NV, 0); heads packed in the columns of a `[B·L, C]` matrix (a fused qkv
 * projection) are (L·C/w, NV, C/w, column offset/w), so no transpose is needed either way.
 */
const AT_FN = `fn at(L : vec4<i32>, b : i32, h : i32, t : i32) -> i32 { return b * L.x + h * L.y + t * L.z + L.w; }`;

/** q, k, v: the inputs' layouts; o: out and dO; g: the gradient outputs dq, dk, dv (see AT_FN). */
const UNIFORMS =
  'Lq : i32, Lk : i32, H : i32, BH : i32, nTiles : i32, scale : f32, qL : vec4<i32>, kL : vec4<i32>, vL : vec4<i32>, oL : vec4<i32>, gL : vec4<i32>,';

interface Base {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames: string[];
  variableComponents: number[];
  outputComponent?: number;
  uniforms: string;
}

function base(
  name: string,
  outputShape: number[],
  ownRows: number,
  bh: number,
  t: ProgramTiles,
  vec: Vec,
  vars: [string, number][],
  extraKey: string,
): Base {
  const nTiles = Math.ceil(ownRows / t.rows);
  return {
    outputShape,
    shaderKey: `t2md_attn_${name}_${vec.nv}x${vec.w}_${t.rows}_${t.tile}_${t.group}_${extraKey}`,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: [nTiles * bh, 1, 1],
    workgroupSize: [t.rows, 1, 1],
    variableNames: vars.map((v) => v[0]),
    variableComponents: vars.map((v) => v[1]),
    uniforms: UNIFORMS,
  };
}

/** A buffer layout in floats: strides of b, h, t and the offset (see AT_FN). */
export type RowLayout = readonly [number, number, number, number];

/** Layouts of one attention call, in floats: inputs q, k, v; o (out, dO); g (dq; dk, dv). */
export interface AttentionLayouts {
  q: RowLayout;
  k: RowLayout;
  v: RowLayout;
  o: RowLayout;
  /** dq's; dk and dv take the same with Lk rows (`gk`). */
  g: RowLayout;
  gk: RowLayout;
}

/** The layout of a `[B, H, L, Dh]` tensor. */
export function headMajor(H: number, L: number, Dh: number): RowLayout {
  return [H * L * Dh, L * Dh, Dh, 0];
}

/** The layout of heads packed in columns `off..off+H·Dh` of a `[B·L, C]` matrix. */
export function columnPacked(L: number, C: number, Dh: number, off: number): RowLayout {
  return [L * C, Dh, C, off];
}

/** Whether every stride and offset is a whole number of vec4s (then the programs read vec4s). */
export function vec4Layouts(dh: number, ls: AttentionLayouts): boolean {
  return dh % 4 === 0 && Object.values(ls).every((l) => (l as RowLayout).every((x) => x % 4 === 0));
}

/** Uniform values for every attention program, in UNIFORMS order; layouts in floats, passed in vectors of w. */
export function attentionUniforms(
  lq: number,
  lk: number,
  h: number,
  bh: number,
  ownRows: number,
  scale: number,
  rows: number,
  ls: AttentionLayouts,
  w: number,
  gradRows: 'q' | 'k' = 'q',
) {
  const vec = (l: RowLayout) => ({ type: 'int32' as const, data: l.map((x) => x / w) });
  return [
    { type: 'int32' as const, data: [lq] },
    { type: 'int32' as const, data: [lk] },
    { type: 'int32' as const, data: [h] },
    { type: 'int32' as const, data: [bh] },
    { type: 'int32' as const, data: [Math.ceil(ownRows / rows)] },
    { type: 'float32' as const, data: [scale] },
    vec(ls.q),
    vec(ls.k),
    vec(ls.v),
    vec(ls.o),
    vec(gradRows === 'q' ? ls.g : ls.gk),
  ];
}

/** Loads rows [row0, row0 + tile) of head (b, h) of up to two buffers (each with its layout) into workgroup arrays. */
function loadTile(vec: Vec, t: ProgramTiles, pairs: [string, string, string][], limit: string): string {
  const n = t.tile * vec.nv;
  const reads = pairs.map(([sh]) => `var ${sh}_x = ${vec.zero};`).join(' ');
  const fetch = pairs.map(([sh, buf, layout]) => `${sh}_x = ${buf}[at(uniforms.${layout}, b, h, row0 + j) + c];`).join(' ');
  const writes = pairs.map(([sh]) => `${sh}[e] = ${sh}_x;`).join(' ');
  return `
    for (var e = tid; e < ${n}; e += ${t.rows}) {
      let j = e / ${vec.nv};
      let c = e - j * ${vec.nv};
      ${reads}
      if (row0 + j < ${limit}) { ${fetch} }
      ${writes}
    }`;
}

/**
 * Forward: out and the per-row log-sum-exp, written into one flat buffer (out first, then L) because a
 * tfjs program has one output; the kernel splits it with two buffer copies.
 * Inputs: qb [B,H,Lq,Dh], kb, vb [B,H,Lk,Dh], mb [B,Lk] (bool as i32, only when masked).
 */
export class AttentionForwardProgram implements WebGPUProgramSpec, Base {
  outputShape!: number[];
  shaderKey!: string;
  dispatchLayout!: { x: number[] };
  dispatch!: [number, number, number];
  workgroupSize!: [number, number, number];
  variableNames!: string[];
  variableComponents!: number[];
  uniforms!: string;
  private readonly vec: Vec;
  private readonly t: ProgramTiles;

  /** @param shape `[B, H, Lq, Dh]` of q (whatever its layout) */
  constructor(
    shape: readonly number[],
    private readonly masked: boolean,
    t: ProgramTiles,
    allow4 = true,
  ) {
    const [bSize, h, lq, dh] = shape;
    this.vec = vecOf(dh, allow4);
    this.t = t;
    const outLen = bSize * h * lq * dh + bSize * h * lq;
    const vars: [string, number][] = [
      ['qb', this.vec.w],
      ['kb', this.vec.w],
      ['vb', this.vec.w],
    ];
    if (masked) vars.push(['mb', 1]);
    Object.assign(this, base('fwd', [outLen], lq, bSize * h, this.t, this.vec, vars, masked ? 'm' : 'n'));
  }

  getUserCode(): string {
    const { vec, t } = this;
    const nv = vec.nv;
    const g = t.group;
    const js = range(g);
    const maskRead = this.masked ? `if (ok) { ok = mb[b * uniforms.Lk + row0 + tid] != 0; }` : '';
    const perKey = js
      .map(
        (j) => `${dotRow(vec, `s${j}`, 'q', 'ksh', `(g + ${j}) * ${nv}`)}
      let ok${j} = msh[g + ${j}] > 0.5;
      let t${j} = select(${NEG}, s${j}, ok${j});`,
      )
      .join('\n      ');
    const maxExpr = js.reduce((acc, j) => `max(${acc}, t${j})`, 'm');
    return `
const NV : i32 = ${nv};
${AT_FN}
var<workgroup> ksh : array<${vec.ty}, ${t.tile * nv}>;
var<workgroup> vsh : array<${vec.ty}, ${t.tile * nv}>;
var<workgroup> msh : array<f32, ${t.tile}>;

fn main(index : i32) {
  ${WG_INDEX}
  let row = tileIdx * ${t.rows} + tid;
  let rowOk = wgActive && row < uniforms.Lq;
  ${declRow(vec, 'q')}
  ${declRow(vec, 'o')}
  if (rowOk) {
    let qBase = at(uniforms.qL, b, h, row);
    ${loadRow(vec, 'q', 'qb', 'qBase', ' * uniforms.scale')}
  }
  var m : f32 = ${NEG};
  var l : f32 = 0.0;
  let kvRow = bh * uniforms.Lk;
  let nk = (uniforms.Lk + ${t.tile - 1}) / ${t.tile};
  for (var kt = 0; kt < nk; kt++) {
    let row0 = kt * ${t.tile};
    workgroupBarrier();
    ${loadTile(
      vec,
      t,
      [
        ['ksh', 'kb', 'kL'],
        ['vsh', 'vb', 'vL'],
      ],
      'uniforms.Lk',
    )}
    if (tid < ${t.tile}) {
      var ok = row0 + tid < uniforms.Lk;
      ${maskRead}
      msh[tid] = select(0.0, 1.0, ok);
    }
    workgroupBarrier();
    for (var g = 0; g < ${t.tile}; g += ${g}) {
      ${perKey}
      let mNew = ${maxExpr};
      let alpha = exp(m - mNew);
      ${js.map((j) => `let p${j} = select(0.0, exp(t${j} - mNew), ok${j});`).join('\n      ')}
      l = l * alpha + ${js.map((j) => `p${j}`).join(' + ')};
      ${axpyRows(
        vec,
        'o',
        js.map((j) => ({ p: `p${j}`, row: `(g + ${j}) * ${nv}` })),
        'vsh',
        'alpha',
      )}
      m = mNew;
    }
  }
  if (rowOk) {
    let inv = select(0.0, 1.0 / l, l > 0.0);
    let oBase = at(uniforms.oL, b, h, row) * ${vec.w};
    ${storeRowScalars(vec, 'o', 'oBase', 'inv')}
    let lBase = uniforms.BH * uniforms.Lq * ${nv * vec.w};
    result[lBase + bh * uniforms.Lq + row] = select(${LSE_EMPTY_WGSL}, m + log(l), l > 0.0);
  }
}`;
  }
}

/**
 * D_i = Σ_d dO_id · O_id, one thread per row i of head (b, h), written head-major `[B, H, Lq]` (where
 * the other programs read it); dO and O are read with layout oL. Inputs gb (dO), ob (O).
 */
export class RowDotProgram implements WebGPUProgramSpec {
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [128, 1, 1];
  variableNames = ['gb', 'ob'];
  variableComponents: number[];
  uniforms = 'rows : i32, Lq : i32, H : i32, oL : vec4<i32>,';
  private readonly vec: Vec;

  constructor(
    public outputShape: number[],
    dh: number,
    allow4 = true,
  ) {
    this.vec = vecOf(dh, allow4);
    this.variableComponents = [this.vec.w, this.vec.w];
    this.shaderKey = `t2md_attn_rowdot_${this.vec.nv}x${this.vec.w}`;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.ceil(outputShape.reduce((a, b) => a * b, 1) / 128), 1, 1];
  }

  /** Uniforms: rows = B·H·Lq, the head count, and the layout of dO and O (floats). */
  programUniforms(rows: number, lq: number, h: number, o: RowLayout) {
    return [
      { type: 'int32' as const, data: [rows] },
      { type: 'int32' as const, data: [lq] },
      { type: 'int32' as const, data: [h] },
      { type: 'int32' as const, data: o.map((x) => x / this.vec.w) },
    ];
  }

  getUserCode(): string {
    const { vec } = this;
    const terms = range(vec.nv).map((v) => `gb[base + ${v}] * ob[base + ${v}]`);
    return `
${AT_FN}
fn main(index : i32) {
  let r = index;
  if (r < uniforms.rows) {
    let i = r % uniforms.Lq;
    let bh = r / uniforms.Lq;
    let base = at(uniforms.oL, bh / uniforms.H, bh % uniforms.H, i);
    var acc = ${vec.zero};
    ${terms.map((x) => `acc += ${x};`).join('\n    ')}
    result[r] = ${vec.hsum('acc')};
  }
}`;
  }
}

/**
 * dQ: one thread per query row i (q_i · scale, dO_i, dQ_i in registers, L_i and D_i scalars), looping
 * over key tiles: p = exp(s - L_i), dp = dO_i · v_j, ds = p (dp - D_i), dQ_i += ds k_j; dQ *= scale.
 * Inputs: qb, kb, vb, gb (dO), lb (L [B,H,Lq]), db (D [B,H,Lq]), mb (mask, when masked).
 */
export class AttentionGradQProgram implements WebGPUProgramSpec, Base {
  outputShape!: number[];
  shaderKey!: string;
  dispatchLayout!: { x: number[] };
  dispatch!: [number, number, number];
  workgroupSize!: [number, number, number];
  variableNames!: string[];
  variableComponents!: number[];
  outputComponent: number;
  uniforms!: string;
  private readonly vec: Vec;
  private readonly t: ProgramTiles;

  /** @param shape `[B, H, Lq, Dh]` of q; `outputShape` the shape dq is handed out in */
  constructor(
    shape: number[],
    private readonly masked: boolean,
    t: ProgramTiles,
    allow4 = true,
    outputShape: number[] = shape,
  ) {
    const [bSize, h, lq, dh] = shape;
    this.vec = vecOf(dh, allow4);
    this.t = t;
    this.outputComponent = this.vec.w;
    const w = this.vec.w;
    const vars: [string, number][] = [
      ['qb', w],
      ['kb', w],
      ['vb', w],
      ['gb', w],
      ['lb', 1],
      ['db', 1],
    ];
    if (masked) vars.push(['mb', 1]);
    Object.assign(this, base('dq', outputShape, lq, bSize * h, this.t, this.vec, vars, masked ? 'm' : 'n'));
  }

  getUserCode(): string {
    const { vec, t } = this;
    const nv = vec.nv;
    const js = range(t.group);
    const maskRead = this.masked ? `if (ok) { ok = mb[b * uniforms.Lk + row0 + tid] != 0; }` : '';
    const perKey = js
      .map(
        (j) => `${dotRow(vec, `s${j}`, 'q', 'ksh', `(g + ${j}) * ${nv}`)}
      ${dotRow(vec, `dp${j}`, 'go', 'vsh', `(g + ${j}) * ${nv}`)}
      let p${j} = select(0.0, exp(s${j} - lse), msh[g + ${j}] > 0.5);
      let ds${j} = p${j} * (dp${j} - dd);`,
      )
      .join('\n      ');
    return `
const NV : i32 = ${nv};
${AT_FN}
var<workgroup> ksh : array<${vec.ty}, ${t.tile * nv}>;
var<workgroup> vsh : array<${vec.ty}, ${t.tile * nv}>;
var<workgroup> msh : array<f32, ${t.tile}>;

fn main(index : i32) {
  ${WG_INDEX}
  let row = tileIdx * ${t.rows} + tid;
  let rowOk = wgActive && row < uniforms.Lq;
  ${declRow(vec, 'q')}
  ${declRow(vec, 'go')}
  ${declRow(vec, 'dq')}
  var lse : f32 = ${LSE_EMPTY_WGSL};
  var dd : f32 = 0.0;
  if (rowOk) {
    let qBase = at(uniforms.qL, b, h, row);
    let gBase = at(uniforms.oL, b, h, row);
    ${loadRow(vec, 'q', 'qb', 'qBase', ' * uniforms.scale')}
    ${loadRow(vec, 'go', 'gb', 'gBase')}
    lse = lb[bh * uniforms.Lq + row];
    dd = db[bh * uniforms.Lq + row];
  }
  let kvRow = bh * uniforms.Lk;
  let nk = (uniforms.Lk + ${t.tile - 1}) / ${t.tile};
  for (var kt = 0; kt < nk; kt++) {
    let row0 = kt * ${t.tile};
    workgroupBarrier();
    ${loadTile(
      vec,
      t,
      [
        ['ksh', 'kb', 'kL'],
        ['vsh', 'vb', 'vL'],
      ],
      'uniforms.Lk',
    )}
    if (tid < ${t.tile}) {
      var ok = row0 + tid < uniforms.Lk;
      ${maskRead}
      msh[tid] = select(0.0, 1.0, ok);
    }
    workgroupBarrier();
    for (var g = 0; g < ${t.tile}; g += ${t.group}) {
      ${perKey}
      ${axpyRows(
        vec,
        'dq',
        js.map((j) => ({ p: `ds${j}`, row: `(g + ${j}) * ${nv}` })),
        'ksh',
      )}
    }
  }
  if (rowOk) {
    let oBase = at(uniforms.gL, b, h, row);
    ${storeRow(vec, 'dq', 'oBase', 'uniforms.scale')}
  }
}`;
  }
}

/**
 * dK or dV: one thread per key row j (k_j · scale and, for dK, v_j in registers), looping over query
 * tiles (q, dO, L, D in workgroup memory): p = exp(q_i · k_j scale - L_i);
 * dV_j += p dO_i;  dK_j += p (dO_i · v_j - D_i) q_i, times scale. A masked key gets zeros.
 * Inputs: qb, kb, vb (dK only), gb (dO), lb (L), db (D, dK only), mb (mask, when masked).
 */
export class AttentionGradKVProgram implements WebGPUProgramSpec, Base {
  outputShape!: number[];
  shaderKey!: string;
  dispatchLayout!: { x: number[] };
  dispatch!: [number, number, number];
  workgroupSize!: [number, number, number];
  variableNames!: string[];
  variableComponents!: number[];
  outputComponent: number;
  uniforms!: string;
  private readonly vec: Vec;
  private readonly t: ProgramTiles;

  /** @param shape `[B, H, Lk, Dh]` of k; `outputShape` the shape dk / dv are handed out in */
  constructor(
    shape: number[],
    private readonly which: 'dk' | 'dv',
    private readonly masked: boolean,
    t: ProgramTiles,
    allow4 = true,
    outputShape: number[] = shape,
  ) {
    const [bSize, h, lk, dh] = shape;
    this.vec = vecOf(dh, allow4);
    this.t = t;
    this.outputComponent = this.vec.w;
    const w = this.vec.w;
    // Only bindings the WGSL uses: tfjs builds pipelines with layout 'auto', which drops unused ones.
    const vars: [string, number][] =
      which === 'dk'
        ? [
            ['qb', w],
            ['kb', w],
            ['vb', w],
            ['gb', w],
            ['lb', 1],
            ['db', 1],
          ]
        : [
            ['qb', w],
            ['kb', w],
            ['gb', w],
            ['lb', 1],
          ];
    if (masked) vars.push(['mb', 1]);
    Object.assign(this, base(which, outputShape, lk, bSize * h, this.t, this.vec, vars, masked ? 'm' : 'n'));
  }

  getUserCode(): string {
    const { vec, t } = this;
    const nv = vec.nv;
    const js = range(t.group);
    const isK = this.which === 'dk';
    const perQuery = js
      .map((j) => {
        const s = dotRow(vec, `s${j}`, 'k', 'qsh', `(g + ${j}) * ${nv}`);
        const p = `let p${j} = exp(s${j} - lsh[g + ${j}]);`;
        if (!isK) return `${s}\n      ${p}`;
        return `${s}\n      ${p}\n      ${dotRow(vec, `dp${j}`, 'vv', 'gsh', `(g + ${j}) * ${nv}`)}
      let ds${j} = p${j} * (dp${j} - dsh[g + ${j}]);`;
      })
      .join('\n      ');
    const maskRead = this.masked ? `if (rowOk) { keyOk = mb[b * uniforms.Lk + row] != 0; }` : '';
    const acc = isK
      ? axpyRows(
          vec,
          'acc',
          js.map((j) => ({ p: `ds${j}`, row: `(g + ${j}) * ${nv}` })),
          'qsh',
        )
      : axpyRows(
          vec,
          'acc',
          js.map((j) => ({ p: `p${j}`, row: `(g + ${j}) * ${nv}` })),
          'gsh',
        );
    return `
const NV : i32 = ${nv};
${AT_FN}
var<workgroup> qsh : array<${vec.ty}, ${t.tile * nv}>;
var<workgroup> gsh : array<${vec.ty}, ${t.tile * nv}>;
var<workgroup> lsh : array<f32, ${t.tile}>;
${isK ? `var<workgroup> dsh : array<f32, ${t.tile}>;` : ''}

fn main(index : i32) {
  ${WG_INDEX}
  let row = tileIdx * ${t.rows} + tid;
  let rowOk = wgActive && row < uniforms.Lk;
  var keyOk = rowOk;
  ${maskRead}
  ${declRow(vec, 'k')}
  ${isK ? declRow(vec, 'vv') : ''}
  ${declRow(vec, 'acc')}
  if (rowOk) {
    let kBase = at(uniforms.kL, b, h, row);
    ${loadRow(vec, 'k', 'kb', 'kBase', ' * uniforms.scale')}
    ${
      isK
        ? `let vBase = at(uniforms.vL, b, h, row);
    ${loadRow(vec, 'vv', 'vb', 'vBase')}`
        : ''
    }
  }
  let qRow = bh * uniforms.Lq;
  let nq = (uniforms.Lq + ${t.tile - 1}) / ${t.tile};
  for (var qt = 0; qt < nq; qt++) {
    let row0 = qt * ${t.tile};
    workgroupBarrier();
    ${loadTile(
      vec,
      t,
      [
        ['qsh', 'qb', 'qL'],
        ['gsh', 'gb', 'oL'],
      ],
      'uniforms.Lq',
    )}
    if (tid < ${t.tile}) {
      let okq = row0 + tid < uniforms.Lq;
      lsh[tid] = select(${LSE_EMPTY_WGSL}, lb[select(0, qRow + row0 + tid, okq)], okq);
      ${isK ? 'dsh[tid] = select(0.0, db[select(0, qRow + row0 + tid, okq)], okq);' : ''}
    }
    workgroupBarrier();
    for (var g = 0; g < ${t.tile}; g += ${t.group}) {
      ${perQuery}
      ${acc}
    }
  }
  if (rowOk) {
    let oBase = at(uniforms.gL, b, h, row);
    ${range(vec.nv)
      .map((v) => `result[oBase + ${v}] = select(${vec.zero}, acc${v}${isK ? ' * uniforms.scale' : ''}, keyOk);`)
      .join('\n    ')}
  }
}`;
  }
}
