/**
 * WGSL programs of the chunked selective scan. The recurrence x_t = a_t x_{t-1} + b_t (a_t = exp(δ_t A),
 * b_t = δ_t B_t u_t) is associative over (a, b) pairs, (a1, b1)∘(a2, b2) = (a1 a2, a2 b1 + b2), so:
 *   1. `ChunkSummaryProgram`: every (b, d, chunk) runs its chunk from a zero state, giving the chunk's b
 *      (its end state) and Σδ (the chunk's a is exp(A Σδ): a product of decays, never a ratio);
 *   2. `ChunkCombineProgram`: every (b, d, n) folds the chunk pairs in order, storing the state that
 *      enters each chunk (and the last state) — [B, D, nChunks + 1, N], never the full [B, D, L, N];
 *   3. `ChunkOutputProgram`: every (b, d, chunk) reruns its chunk from the true entering state and
 *      writes y = (Σ_n x C + D u) · silu(z).
 * The backward mirrors this with the adjoint running backwards in time (`ReverseSummaryProgram`,
 * `ReverseCombineProgram`) and `BackwardProgram`, which recomputes each chunk's states from its
 * entering state and reduces dB, dC over the channels of a workgroup.
 * Shapes and the softplus / gate flags travel as uniforms; only whether a bias input exists is baked in
 * (and keyed), so few pipelines are compiled.
 */
import { flatDispatch, type WebGPUProgramSpec } from '@t2md/core';

const WG = 64;
/** States per thread held in registers at once; larger dstate loops over tiles of NT. */
const NT = 16;
/** Chunk length of the backward: one workgroup thread per time step in the dB/dC reduction. */
export const BWD_CHUNK = 32;

// sp: δ through softplus (1) or not; hz: a z gate is bound (1). Runtime flags, so one pipeline serves all cases.
const DIMS = 'nb : i32, nd : i32, ns : i32, nl : i32, ng : i32, chunk : i32, nchunk : i32, sp : i32, hz : i32,';

/** Uniform values matching DIMS. */
export function dimUniforms(
  dims: { batch: number; dim: number; dstate: number; seqlen: number; ngroups: number },
  chunk: number,
  flags: { softplus?: boolean; hasZ?: boolean } = {},
) {
  const nchunk = Math.ceil(dims.seqlen / chunk);
  const v = [dims.batch, dims.dim, dims.dstate, dims.seqlen, dims.ngroups, chunk, nchunk, flags.softplus ? 1 : 0, flags.hasZ ? 1 : 0];
  return v.map((x) => ({ type: 'int32' as const, data: [x] }));
}

const HELPERS = `
const NT : i32 = ${NT};
fn softplusF(x : f32) -> f32 {
  let e = exp(-abs(x));
  // log1p(e) without log1p: log(1 + e) loses e below float32's epsilon, the series keeps it.
  return max(x, 0.0) + select(log(1.0 + e), e * (1.0 - 0.5 * e), e < 1e-4);
}
fn sigmoidF(x : f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
`;

/** Index of one (b, d, chunk) work item, channel fastest so a workgroup shares B, C reads. */
const ITEM = `
  let d = index % uniforms.nd;
  let bc = index / uniforms.nd;
  let c = bc % uniforms.nchunk;
  let b = bc / uniforms.nchunk;
  let g = d / (uniforms.nd / uniforms.ng);
  let t0 = c * uniforms.chunk;
  let t1 = min(t0 + uniforms.chunk, uniforms.nl);
  let row = (b * uniforms.nd + d) * uniforms.nl;   // [B, D, L] row
  let grp = (b * uniforms.ng + g) * uniforms.ns;   // [B, G, N] row of B, C (times L)
`;

function itemProgram(self: { outputShape: number[]; dispatch: [number, number, number]; dispatchLayout: { x: number[] } }, items: number) {
  self.dispatchLayout = { x: self.outputShape.map((_, i) => i) };
  self.dispatch = flatDispatch(items, WG);
}

/** δ at flat index `at` of channel `ch`: delta (+ bias). Softplus follows when uniforms.sp is set. */
function dtExpr(at: string, ch: string, withBias: boolean): string {
  return withBias ? `delta[${at}] + bias[${ch}]` : `delta[${at}]`;
}

/** Channels per workgroup of the tiled forward passes, and time steps per staged tile. */
const WGC = 64;
const TT = 16;

/** Workgroups of the tiled forward passes: one per (b, chunk, block of WGC channels). */
export function tiledWorkgroups(batch: number, dim: number, nChunks: number): number {
  return batch * nChunks * Math.ceil(dim / WGC);
}

/**
 * Shared head of the tiled passes. A workgroup is WGC channels of one (b, chunk); u and δ are staged
 * through workgroup memory TT steps at a time, loaded (and y stored) along rows so global accesses are
 * coalesced, while each thread runs its own channel's recurrence from the staged tile.
 * Past the chunk's end δ = u = 0, which leaves the state unchanged.
 */
function tiledHead(withBias: boolean, extraShared: string[]): string {
  const shared = ['shU', 'shD', ...extraShared].map((n) => `var<workgroup> ${n} : array<f32, ${WGC * (TT + 1)}>;`).join('\n');
  return `${HELPERS}
const WGC : i32 = ${WGC};
const TT : i32 = ${TT};
const TP : i32 = ${TT + 1};
${shared}

struct Item { b : i32, c : i32, d0 : i32, d : i32, ok : bool, wgOk : bool, lid : i32, t0 : i32, t1 : i32, grp : i32 }

fn item() -> Item {
  var it : Item;
  let wg = i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y + workgroupId.y * numWorkgroups.x + workgroupId.x);
  let ndb = (uniforms.nd + WGC - 1) / WGC;
  let r1 = wg / ndb;
  it.d0 = (wg % ndb) * WGC;
  it.c = r1 % uniforms.nchunk;
  it.wgOk = r1 / uniforms.nchunk < uniforms.nb;
  it.b = min(r1 / uniforms.nchunk, uniforms.nb - 1);
  it.lid = i32(localId.x);
  it.ok = it.wgOk && it.d0 + it.lid < uniforms.nd;
  it.d = min(it.d0 + it.lid, uniforms.nd - 1);
  it.t0 = it.c * uniforms.chunk;
  it.t1 = min(it.t0 + uniforms.chunk, uniforms.nl);
  it.grp = (it.b * uniforms.ng + it.d / (uniforms.nd / uniforms.ng)) * uniforms.ns;
  return it;
}

// Element e of a [WGC, TT] tile starting at time tb: its row (channel d0 + r), column j, flat index.
struct Cell { r : i32, j : i32, at : i32, ch : i32, valid : bool }
fn cell(it : Item, tb : i32, e : i32) -> Cell {
  var q : Cell;
  q.r = e / TT;
  q.j = e % TT;
  let t = tb + q.j;
  q.valid = it.wgOk && it.d0 + q.r < uniforms.nd && t < it.t1;
  q.ch = min(it.d0 + q.r, uniforms.nd - 1);
  q.at = (it.b * uniforms.nd + q.ch) * uniforms.nl + min(t, uniforms.nl - 1);
  return q;
}

fn loadTile(it : Item, tb : i32) {
  for (var i = 0; i < TT; i++) {
    let q = cell(it, tb, i * WGC + it.lid);
    shU[q.r * TP + q.j] = select(0.0, u[q.at], q.valid);
    shD[q.r * TP + q.j] = select(0.0, ${dtExpr('q.at', 'q.ch', withBias)}, q.valid);
  }
  // Softplus in place, as a second loop outside the loads, which stay branch-free.
  if (uniforms.sp == 1) {
    for (var i = 0; i < TT; i++) {
      let q = cell(it, tb, i * WGC + it.lid);
      let at = q.r * TP + q.j;
      shD[at] = select(0.0, softplusF(shD[at]), q.valid); // δ stays 0 past the chunk's end
    }
  }
}
`;
}

/** Pass 1 → [B, D, nChunks, N + 1]: each chunk's end state from zero (first N) and Σδ (last slot). */
export class ChunkSummaryProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WGC, 1, 1];
  variableNames: string[];
  uniforms = DIMS;

  /** Without `withBias` (the backward passes δ already biased and softplus'd) there is no bias input. */
  constructor(
    batch: number,
    dim: number,
    nChunks: number,
    dstate: number,
    private readonly withBias: boolean,
  ) {
    this.outputShape = [batch, dim, nChunks, dstate + 1];
    this.variableNames = ['u', 'delta', 'A', 'Bm', ...(withBias ? ['bias'] : [])];
    this.shaderKey = `t2md_sscan_summary_${withBias}`;
    this.dispatchLayout = { x: [0, 1, 2, 3] };
    this.dispatch = [tiledWorkgroups(batch, dim, nChunks), 1, 1];
  }

  getUserCode(): string {
    return `${tiledHead(this.withBias, [])}
fn main(index : i32) {
  // No early return: every thread must reach the barriers.
  let it = item();
  let base = ((it.b * uniforms.nd + it.d) * uniforms.nchunk + it.c) * (uniforms.ns + 1);
  var dtsum = 0.0;
  for (var n0 = 0; n0 < uniforms.ns; n0 += NT) {
    var x : array<f32, ${NT}>;
    var an : array<f32, ${NT}>;
    for (var k = 0; k < NT; k++) {
      an[k] = select(0.0, A[it.d * uniforms.ns + min(n0 + k, uniforms.ns - 1)], n0 + k < uniforms.ns);
      x[k] = 0.0;
    }
    for (var tb = 0; tb < uniforms.chunk; tb += TT) {
      loadTile(it, it.t0 + tb);
      workgroupBarrier();
      for (var j = 0; j < TT; j++) {
        let dt = shD[it.lid * TP + j];
        let du = dt * shU[it.lid * TP + j];
        dtsum += select(0.0, dt, n0 == 0);
        let t = min(it.t0 + tb + j, uniforms.nl - 1);
        for (var k = 0; k < NT; k++) {
          let n = min(n0 + k, uniforms.ns - 1);
          x[k] = exp(dt * an[k]) * x[k] + du * Bm[(it.grp + n) * uniforms.nl + t];
        }
      }
      workgroupBarrier();
    }
    for (var k = 0; k < NT; k++) {
      if (it.ok && n0 + k < uniforms.ns) { setOutputAtIndex(base + n0 + k, x[k]); }
    }
  }
  if (it.ok) { setOutputAtIndex(base + uniforms.ns, dtsum); }
}`;
  }
}

/** Pass 2 → [B, D, nChunks + 1, N]: the state entering each chunk, then the last state. */
export class ChunkCombineProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_sscan_combine';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['summary', 'A'];
  uniforms = DIMS;

  constructor(batch: number, dim: number, nChunks: number, dstate: number) {
    this.outputShape = [batch, dim, nChunks + 1, dstate];
    this.dispatchLayout = { x: [0, 1, 2, 3] };
    this.dispatch = flatDispatch(batch * dim * dstate, WG);
  }

  getUserCode(): string {
    return `
fn main(index : i32) {
  if (index >= uniforms.nb * uniforms.nd * uniforms.ns) { return; }
  let n = index % uniforms.ns;
  let bd = index / uniforms.ns;
  let an = A[(bd % uniforms.nd) * uniforms.ns + n];
  var s = 0.0;
  for (var c = 0; c < uniforms.nchunk; c++) {
    let base = (bd * uniforms.nchunk + c) * (uniforms.ns + 1);
    setOutputAtIndex((bd * (uniforms.nchunk + 1) + c) * uniforms.ns + n, s);
    s = exp(an * summary[base + uniforms.ns]) * s + summary[base + n];
  }
  setOutputAtIndex((bd * (uniforms.nchunk + 1) + uniforms.nchunk) * uniforms.ns + n, s);
}`;
  }
}

/** Pass 3 → y [B, D, L]: rerun each chunk from its entering state; D skip and silu(z) gate fused. */
export class ChunkOutputProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WGC, 1, 1];
  variableNames: string[];
  uniforms = DIMS;

  constructor(batch: number, dim: number, seqlen: number, nChunks: number) {
    this.outputShape = [batch, dim, seqlen];
    // z is always bound (a [1] placeholder without a gate) and read only when uniforms.hz is set.
    this.variableNames = ['u', 'delta', 'A', 'Bm', 'Cm', 'states', 'Dv', 'bias', 'z'];
    this.shaderKey = 't2md_sscan_output';
    this.dispatchLayout = { x: [0, 1, 2] };
    this.dispatch = [tiledWorkgroups(batch, dim, nChunks), 1, 1];
  }

  getUserCode(): string {
    return `${tiledHead(true, ['shY'])}
fn main(index : i32) {
  // No early return: every thread must reach the barriers.
  let it = item();
  let sbase = ((it.b * uniforms.nd + it.d) * (uniforms.nchunk + 1) + it.c) * uniforms.ns;
  for (var n0 = 0; n0 < uniforms.ns; n0 += NT) {
    var x : array<f32, ${NT}>;
    var an : array<f32, ${NT}>;
    for (var k = 0; k < NT; k++) {
      let n = min(n0 + k, uniforms.ns - 1);
      let inRange = n0 + k < uniforms.ns;
      an[k] = select(0.0, A[it.d * uniforms.ns + n], inRange);
      x[k] = select(0.0, states[sbase + n], inRange);
    }
    let last = n0 + NT >= uniforms.ns;
    for (var tb = 0; tb < uniforms.chunk; tb += TT) {
      loadTile(it, it.t0 + tb);
      workgroupBarrier();
      for (var j = 0; j < TT; j++) {
        let dt = shD[it.lid * TP + j];
        let du = dt * shU[it.lid * TP + j];
        let t = min(it.t0 + tb + j, uniforms.nl - 1);
        var acc = 0.0;
        for (var k = 0; k < NT; k++) {
          let n = min(n0 + k, uniforms.ns - 1);
          let at = (it.grp + n) * uniforms.nl + t;
          x[k] = exp(dt * an[k]) * x[k] + du * Bm[at];
          acc += select(0.0, x[k] * Cm[at], n0 + k < uniforms.ns);
        }
        shY[it.lid * TP + j] = acc;
      }
      workgroupBarrier();
      for (var i = 0; i < TT; i++) {
        let q = cell(it, it.t0 + tb, i * WGC + it.lid);
        if (q.valid) {
          var yv = shY[q.r * TP + q.j];
          if (n0 > 0) { yv += result[q.at]; }
          if (last) {
            yv += Dv[q.ch] * shU[q.r * TP + q.j];
            if (uniforms.hz == 1) {
              let zv = z[q.at];
              yv = yv * zv * sigmoidF(zv);
            }
          }
          result[q.at] = yv;
        }
      }
      workgroupBarrier();
    }
  }
}`;
  }
}

/** Backward pass 1 → [B, D, nChunks, N]: each chunk's adjoint carry out of its start, from zero at its end. */
export class ReverseSummaryProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_sscan_rev_summary';
  dispatchLayout!: { x: number[] };
  dispatch!: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['dt', 'A', 'Cm', 'gy'];
  uniforms = DIMS;

  constructor(batch: number, dim: number, nChunks: number, dstate: number) {
    this.outputShape = [batch, dim, nChunks, dstate];
    itemProgram(this, batch * dim * nChunks);
  }

  getUserCode(): string {
    return `${HELPERS}
fn main(index : i32) {
  if (index >= uniforms.nb * uniforms.nchunk * uniforms.nd) { return; }
  ${ITEM}
  let base = ((b * uniforms.nd + d) * uniforms.nchunk + c) * uniforms.ns;
  for (var n0 = 0; n0 < uniforms.ns; n0 += NT) {
    var h : array<f32, ${NT}>;
    var an : array<f32, ${NT}>;
    for (var k = 0; k < NT; k++) {
      an[k] = select(0.0, A[d * uniforms.ns + min(n0 + k, uniforms.ns - 1)], n0 + k < uniforms.ns);
      h[k] = 0.0;
    }
    for (var t = t1 - 1; t >= t0; t--) {
      let dtv = dt[row + t];
      let gyv = gy[row + t];
      for (var k = 0; k < NT; k++) {
        let n = min(n0 + k, uniforms.ns - 1);
        h[k] = exp(dtv * an[k]) * (h[k] + gyv * Cm[(grp + n) * uniforms.nl + t]);
      }
    }
    for (var k = 0; k < NT; k++) {
      if (n0 + k < uniforms.ns) { setOutputAtIndex(base + n0 + k, h[k]); }
    }
  }
}`;
  }
}

/** Backward pass 2 → [B, D, nChunks, N]: the adjoint carry entering each chunk at its end (gLast for the last). */
export class ReverseCombineProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_sscan_rev_combine';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['summary', 'carry', 'A', 'gLast'];
  uniforms = DIMS;

  constructor(batch: number, dim: number, nChunks: number, dstate: number) {
    this.outputShape = [batch, dim, nChunks, dstate];
    this.dispatchLayout = { x: [0, 1, 2, 3] };
    this.dispatch = flatDispatch(batch * dim * dstate, WG);
  }

  getUserCode(): string {
    return `
fn main(index : i32) {
  if (index >= uniforms.nb * uniforms.nd * uniforms.ns) { return; }
  let n = index % uniforms.ns;
  let bd = index / uniforms.ns;
  let an = A[(bd % uniforms.nd) * uniforms.ns + n];
  var e = gLast[bd * uniforms.ns + n];
  for (var c = uniforms.nchunk - 1; c >= 0; c--) {
    let at = (bd * uniforms.nchunk + c) * uniforms.ns + n;
    setOutputAtIndex(at, e);
    e = exp(an * summary[(bd * uniforms.nchunk + c) * (uniforms.ns + 1) + uniforms.ns]) * e + carry[at];
  }
}`;
  }
}

/** Offsets of the sections of the backward program's flat output. */
export function backwardLayout(dims: { batch: number; dim: number; dstate: number; seqlen: number; ngroups: number }) {
  const { batch, dim, dstate, seqlen, ngroups } = dims;
  const nChunks = Math.ceil(seqlen / BWD_CHUNK);
  const dBlocks = Math.ceil(dim / ngroups / BWD_CHUNK);
  const bdl = batch * dim * seqlen;
  const gA = 3 * bdl;
  const gB = gA + batch * nChunks * dim * dstate;
  const gC = gB + batch * ngroups * dBlocks * dstate * seqlen;
  return { nChunks, dBlocks, bdl, gdt: 0, gu: bdl, ys: 2 * bdl, gA, gB, gC, size: gC + (gC - gB) };
}

/**
 * Backward pass 3 → one flat buffer (see backwardLayout): gdt, gu, ys [B, D, L]; dA partials
 * [B·nChunks, D, N]; dB, dC partials [B, G, dBlocks, N, L]. A workgroup is BWD_CHUNK channels of one
 * group and one chunk; thread j also owns time step j of the chunk when summing dB, dC over channels.
 */
export class BackwardProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_sscan_backward';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [BWD_CHUNK, 1, 1];
  variableNames = ['u', 'dt', 'A', 'Bm', 'Cm', 'gy', 'states', 'enter'];
  uniforms = `${DIMS} ndb : i32, offA : i32, offB : i32, offC : i32,`;

  constructor(size: number, workgroups: number) {
    this.outputShape = [size];
    this.dispatchLayout = { x: [0] };
    this.dispatch = [workgroups, 1, 1];
  }

  getUserCode(): string {
    const T = BWD_CHUNK;
    const P = T + 1; // padded row: thread j writes row j, reads column j, without bank conflicts
    return `
var<workgroup> shB : array<f32, ${T * P}>;
var<workgroup> shC : array<f32, ${T * P}>;
const TC : i32 = ${T};
const TP : i32 = ${P};

fn main(index : i32) {
  // No early return: every thread must reach the barriers below.
  let wg = i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y + workgroupId.y * numWorkgroups.x + workgroupId.x);
  let lid = i32(localId.x);
  let db = wg % uniforms.ndb;
  let r1 = wg / uniforms.ndb;
  let c = r1 % uniforms.nchunk;
  let r2 = r1 / uniforms.nchunk;
  let g = r2 % uniforms.ng;
  let bRaw = r2 / uniforms.ng;
  let wgOk = bRaw < uniforms.nb;
  let b = min(bRaw, uniforms.nb - 1);
  let perGroup = uniforms.nd / uniforms.ng;
  let dl = db * TC + lid;
  let ok = wgOk && dl < perGroup;
  let d = g * perGroup + min(dl, perGroup - 1);
  let t0 = c * TC;
  let len = min(TC, uniforms.nl - t0);
  let row = (b * uniforms.nd + d) * uniforms.nl + t0;
  var dts : array<f32, ${T}>;
  var us : array<f32, ${T}>;
  var gys : array<f32, ${T}>;
  var gdt : array<f32, ${T}>;
  var gu : array<f32, ${T}>;
  var ys : array<f32, ${T}>;
  var xs : array<f32, ${P}>;
  for (var j = 0; j < len; j++) {
    dts[j] = dt[row + j];
    us[j] = u[row + j];
    gys[j] = gy[row + j];
  }
  for (var n = 0; n < uniforms.ns; n++) {
    let an = A[d * uniforms.ns + n];
    let bc = ((b * uniforms.ng + g) * uniforms.ns + n) * uniforms.nl + t0;
    var x = states[((b * uniforms.nd + d) * (uniforms.nchunk + 1) + c) * uniforms.ns + n];
    xs[0] = x;
    for (var j = 0; j < len; j++) {
      x = exp(dts[j] * an) * x + dts[j] * Bm[bc + j] * us[j];
      xs[j + 1] = x;
      ys[j] += x * Cm[bc + j];
    }
    var carry = enter[((b * uniforms.nd + d) * uniforms.nchunk + c) * uniforms.ns + n];
    var ga = 0.0;
    for (var j = TC - 1; j >= 0; j--) {
      var cb = 0.0;
      var cc = 0.0;
      if (j < len) {
        let decay = exp(dts[j] * an);
        let bv = Bm[bc + j];
        let h = carry + gys[j] * Cm[bc + j];
        let xp = xs[j];
        gdt[j] += h * (an * decay * xp + bv * us[j]);
        gu[j] += h * dts[j] * bv;
        ga += h * xp * dts[j] * decay;
        cb = h * dts[j] * us[j];
        cc = gys[j] * xs[j + 1];
        carry = decay * h;
      }
      shB[lid * TP + j] = select(0.0, cb, ok);
      shC[lid * TP + j] = select(0.0, cc, ok);
    }
    if (ok) {
      result[uniforms.offA + ((b * uniforms.nchunk + c) * uniforms.nd + d) * uniforms.ns + n] = ga;
    }
    workgroupBarrier();
    var sb = 0.0;
    var sc = 0.0;
    for (var r = 0; r < TC; r++) {
      sb += shB[r * TP + lid];
      sc += shC[r * TP + lid];
    }
    if (wgOk && lid < len) {
      let at = (((b * uniforms.ng + g) * uniforms.ndb + db) * uniforms.ns + n) * uniforms.nl + t0 + lid;
      result[uniforms.offB + at] = sb;
      result[uniforms.offC + at] = sc;
    }
    workgroupBarrier();
  }
  if (ok) {
    for (var j = 0; j < len; j++) {
      result[row + j] = gdt[j];
      result[uniforms.nb * uniforms.nd * uniforms.nl + row + j] = gu[j];
      result[2 * uniforms.nb * uniforms.nd * uniforms.nl + row + j] = ys[j];
    }
  }
}`;
  }
}

/**
 * out[o, i] = Σ_k src[offset + o·outerStride + k·kStride + i] for i < inner: slices a section out of
 * a packed buffer (kCount 1) or sums partials (dA over chunks, dB/dC over channel blocks).
 */
export class GatherSumProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_sscan_gather_sum';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['src'];
  uniforms = 'inner : i32, outerStride : i32, kStride : i32, kCount : i32, offset : i32,';
  size = true;

  constructor(outputShape: number[]) {
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = flatDispatch(
      outputShape.reduce((a, b) => a * b, 1),
      WG,
    );
  }

  getUserCode(): string {
    return `
fn main(index : i32) {
  if (index < uniforms.size) {
    let o = index / uniforms.inner;
    let base = uniforms.offset + o * uniforms.outerStride + index % uniforms.inner;
    var s = 0.0;
    for (var k = 0; k < uniforms.kCount; k++) { s += src[base + k * uniforms.kStride]; }
    setOutputAtIndex(index, s);
  }
}`;
  }
}
