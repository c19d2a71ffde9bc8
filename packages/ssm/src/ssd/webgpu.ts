/**
 * The chunked SSD algorithm on WebGPU (Mamba-2 paper §6; the pass structure of mamba_ssm's Triton
 * kernels), forward and backward, every pass a WGSL program from ./webgpu-programs.ts.
 *
 * Notation inside a chunk c of Q tokens: dt' the processed step, a = dt' A, cs the inclusive cumsum
 * of a within the chunk, Xd_j = dt'_j x_j, CB_ij = C_i · B_j, H_c the state entering chunk c.
 *   S_c     = Σ_j exp(cs_last - cs_j) Xd_j B_jᵀ                  (chunk state)
 *   H_{c+1} = exp(cs_last) H_c + S_c                              (state passing)
 *   y_i     = exp(cs_i) H_c C_i + Σ_{j<=i} CB_ij exp(cs_i - cs_j) Xd_j + D x_i, gated by silu(z)
 * Stable segment sums: every exp takes a difference of cumsums *within one chunk* (≤ 0 for A < 0),
 * never a ratio exp(cs_i) / exp(cs_j), which is 0/0 under strong decay.
 */

import { disposeIntermediate, runProgram } from '@t2md/core';
import type { KernelBackend } from '@tensorflow/tfjs-core';
import { type KernelFunc, type TensorInfo, util } from '@tensorflow/tfjs-core';
import type { SsdAttrs } from './types.js';
import {
  BATCH_CG,
  BATCH_CH,
  BackPassProgram,
  F_CLAMP,
  F_DCHAN,
  F_HASBIAS,
  F_HASD,
  F_HASINIT,
  F_HASMAX,
  F_HASZ,
  F_SOFTPLUS,
  type GemmPhase,
  GemmProgram,
  MapProgram,
  ReduceProgram,
  RowDotsProgram,
  type SsdGeom,
  ssdUniforms,
} from './webgpu-programs.js';

type Inputs = Record<string, TensorInfo>;

export function geom(x: TensorInfo, B: TensorInfo, a: SsdAttrs): SsdGeom {
  const [Bz, L, H, P] = x.shape;
  const [, , G, N] = B.shape;
  const Q = a.chunkSize;
  const Nc = Math.ceil(L / Q);
  const flags =
    (a.dtSoftplus ? F_SOFTPLUS : 0) |
    (a.dtClamp ? F_CLAMP : 0) |
    (Number.isFinite(a.dtMax) ? F_HASMAX : 0) |
    (a.hasD ? F_HASD : 0) |
    (a.dPerChannel ? F_DCHAN : 0) |
    (a.hasZ ? F_HASZ : 0) |
    (a.hasBias ? F_HASBIAS : 0) |
    (a.hasInit ? F_HASINIT : 0);
  return { Bz, L, H, P, G, N, Q, Nc, Lp: Nc * Q, flags, dtMin: a.dtMin, dtMax: a.dtMax, tile: a.gemmTile };
}

/** Workgroups a sliced reduction aims for, and the fewest terms one of them sums. */
const REDUCE_WORKGROUPS = 512;
const REDUCE_MIN_TERMS = 4096;

export function run(
  backend: KernelBackend,
  g: SsdGeom,
  prog: GemmProgram | MapProgram | BackPassProgram | ReduceProgram | RowDotsProgram,
  inputs: TensorInfo[],
  extra?: { gemm?: GemmProgram['tiles']; aux?: number; out?: TensorInfo },
): TensorInfo {
  const tiles = prog instanceof GemmProgram ? prog.tiles : (extra?.gemm ?? null);
  // tfjs names a program's GPU timer (tf.time's getExtraProfileInfo) after its constructor: name each pass
  Object.defineProperty(prog, 'constructor', { value: { name: prog.shaderKey }, enumerable: false });
  return runProgram(backend, prog, inputs, ssdUniforms(g, tiles, extra?.aux ?? 0), 'float32', extra?.out);
}

// ---- the passes shared by forward and backward ----

/** dt' and the within-chunk cumsum of dt' A: [2, B, H, Lp] flat (one thread per (b, h, chunk)). */
export function dtcPass(be: KernelBackend, g: SsdGeom, i: Inputs): TensorInfo {
  const prog = new MapProgram(
    'dtc',
    ['dtIn', 'aIn', 'biasIn'],
    [2 * g.Bz * g.H * g.Lp],
    g.Bz * g.H * g.Nc,
    'uniforms.Bz * uniforms.Hh * uniforms.Nc',
    `let c = index % uniforms.Nc;
  let bh = index / uniforms.Nc;
  let h = bh % uniforms.Hh;
  let b = bh / uniforms.Hh;
  let A = aIn[h];
  var bias = 0.0;
  if (hasFlag(${F_HASBIAS})) { bias = biasIn[h]; }
  let off1 = uniforms.Bz * uniforms.Hh * uniforms.Lp;
  var cs = 0.0;
  for (var q = 0; q < uniforms.Qc; q++) {
    let t = c * uniforms.Qc + q;
    var d = 0.0;
    if (t < uniforms.Lq) { d = procDt(dtIn[(b * uniforms.Lq + t) * uniforms.Hh + h] + bias).x; }
    cs += d * A;
    result[bh * uniforms.Lp + t] = d;
    result[off1 + bh * uniforms.Lp + t] = cs;
  }`,
  );
  return run(be, g, prog, [i.dt, i.A, i.dtBias]);
}

/** CB_ij = C_i · B_j per (b, chunk, group), lower-triangular tiles only: [B, Nc, G, Q, Q]. */
export function cbPass(be: KernelBackend, g: SsdGeom, i: Inputs): TensorInfo {
  const prog = new GemmProgram(
    'cb',
    ['bIn', 'cIn'],
    [g.Bz * g.Nc * g.G * g.Q * g.Q],
    { M: g.Q, N: g.Q, batch: g.Bz * g.Nc * g.G },
    {
      batchDecl: BATCH_CG,
      tileLive: 'n0 <= m0 + 63',
      phases: [{ kMax: 'uniforms.Nn', a: 'ldC(b, t0 + m, g, k)', aLayout: 'mk', b: 'ldB(b, t0 + n, g, k)', bLayout: 'nk' }],
      epilogue: 'result[cbIdx(b, c, g, m, n)] = v;',
    },
    g.tile,
  );
  return run(be, g, prog, [i.B, i.C]);
}

/** Chunk states S_c [B, Nc, H, P, N]. */
function statesPass(be: KernelBackend, g: SsdGeom, i: Inputs, dtc: TensorInfo): TensorInfo {
  const prog = new GemmProgram(
    'states',
    ['xIn', 'bIn', 'dtc'],
    [g.Bz * g.Nc * g.H * g.P * g.N],
    { M: g.P, N: g.N, batch: g.Bz * g.Nc * g.H },
    {
      batchDecl: `${BATCH_CH}
  let csl = csAt(b, h, t0 + uniforms.Qc - 1);`,
      phases: [
        {
          kMax: 'uniforms.Qc',
          a: 'ldX(b, t0 + k, h, m) * dtpAt(b, h, t0 + k) * exp(csl - csAt(b, h, t0 + k))',
          aLayout: 'km',
          b: 'ldB(b, t0 + k, g, n)',
          bLayout: 'kn',
        },
      ],
      epilogue: 'result[stBase(b, c, h) + m * uniforms.Nn + n] = v;',
    },
    g.tile,
  );
  return run(be, g, prog, [i.x, i.B, dtc]);
}

/** The pass kernels' start: one invocation per (b, h, p·n) state element, walking the chunks in order. */
export const PASS_STATE = `let PN = uniforms.Pp * uniforms.Nn;
  let pn = index % PN;
  let bh = index / PN;
  let h = bh % uniforms.Hh;
  let b = bh / uniforms.Hh;
  var s = 0.0;`;

/** States entering each chunk, H_0 = initial, ..., H_Nc = final: [B, Nc + 1, H, P, N]. */
function passPass(be: KernelBackend, g: SsdGeom, i: Inputs, st: TensorInfo, dtc: TensorInfo): TensorInfo {
  const PN = g.P * g.N;
  const prog = new MapProgram(
    'pass',
    ['st', 'dtc', 'initIn'],
    [g.Bz * (g.Nc + 1) * g.H * PN],
    g.Bz * g.H * PN,
    'uniforms.Bz * uniforms.Hh * uniforms.Pp * uniforms.Nn',
    `${PASS_STATE}
  if (hasFlag(${F_HASINIT})) { s = initIn[index]; }
  result[hpBase(b, 0, h) + pn] = s;
  for (var c = 0; c < uniforms.Nc; c++) {
    s = exp(csAt(b, h, c * uniforms.Qc + uniforms.Qc - 1)) * s + st[stBase(b, c, h) + pn];
    result[hpBase(b, c + 1, h) + pn] = s;
  }`,
  );
  return run(be, g, prog, [st, dtc, i.initialStates]);
}

/**
 * `passPass` in place, for the forward without initial states: S_c is overwritten by H_{c+1}, the
 * state leaving chunk c (H_0 = 0 is never stored), so the forward holds one [B, Nc, H, P, N] buffer
 * where `passPass` holds two (a 1.1 GiB buffer at 32,400 tokens of the scaling bench's student; issue
 * 23). The same sums in the same order: `yPass(..., inPlace)` reads the same states. The backward
 * recomputes its states with `passPass`, which it reads by the `hpBase` layout.
 */
function passInPlace(be: KernelBackend, g: SsdGeom, st: TensorInfo, dtc: TensorInfo): TensorInfo {
  const PN = g.P * g.N;
  const prog = new MapProgram(
    'pass_ip',
    ['dtc'],
    [g.Bz * g.Nc * g.H * PN],
    g.Bz * g.H * PN,
    'uniforms.Bz * uniforms.Hh * uniforms.Pp * uniforms.Nn',
    `${PASS_STATE}
  for (var c = 0; c < uniforms.Nc; c++) {
    let at = stBase(b, c, h) + pn;
    s = exp(csAt(b, h, c * uniforms.Qc + uniforms.Qc - 1)) * s + result[at];
    result[at] = s;
  }`,
  );
  return run(be, g, prog, [dtc], { out: st });
}

/**
 * y's within-chunk phase, shared by both forwards: Σ_{j<=i} (j < i without the diagonal) CB_ij
 * exp(cs_i − cs_j) dt'_j x_j over the chunk's tokens j, in a GemmProgram batched per (b, chunk, head).
 */
export const yIntraChunk = (diagonal: boolean): GemmPhase => ({
  kMax: 'uniforms.Qc',
  kEnd: 'min(uniforms.Qc, m0 + 64)',
  a: `select(0.0, cb[cbIdx(b, c, g, m, min(k, m))] * exp(csAt(b, h, t0 + m) - csAt(b, h, t0 + min(k, m))) * dtpAt(b, h, t0 + k), k ${diagonal ? '<=' : '<'} m)`,
  aLayout: 'mk',
  b: 'ldX(b, t0 + k, h, n)',
  bLayout: 'kn',
});

/** The forward's y epilogue, shared by both forwards: v (the SSM part) + D x, gated by silu(z). */
export const Y_OUT = `let t = t0 + m;
        if (t < uniforms.Lq) {
          let xi = xIdx(b, t, h, n);
          var o = v + dVal(h, n) * xIn[xi];
          if (hasFlag(${F_HASZ})) { let zv = zIn[xi]; o = o * zv * sigm(zv); }
          result[xi] = o;
        }`;

/**
 * y per (b, chunk, head): exp(cs_i) C_i·H_c + Σ_{j<=i} CB_ij exp(cs_i - cs_j) dt'_j x_j, then (forward)
 * + D x and the silu(z) gate, or (raw, for the backward) the SSM part alone. [B, L, H, P].
 */
function yPass(
  be: KernelBackend,
  g: SsdGeom,
  i: Inputs,
  dtc: TensorInfo,
  cb: TensorInfo,
  hp: TensorInfo,
  raw: boolean,
  inPlace = false,
): TensorInfo {
  const prog = new GemmProgram(
    raw ? 'y_raw' : inPlace ? 'y_ip' : 'y',
    ['xIn', 'cIn', 'dtc', 'cb', 'hp', 'dIn', 'zIn'],
    [g.Bz, g.L, g.H, g.P],
    { M: g.Q, N: g.P, batch: g.Bz * g.Nc * g.H },
    {
      // inPlace: hp is passInPlace's [B, Nc, H, P, N], H_c in slot c - 1 and H_0 = 0 (as passPass writes it)
      batchDecl: `${BATCH_CH}
  let hb = ${inPlace ? 'stBase(b, max(c - 1, 0), h)' : 'hpBase(b, c, h)'};`,
      phases: [
        {
          kMax: 'uniforms.Nn',
          // the row's decay exp(cs_i) is folded into A, so the phase needs no second set of accumulators
          a: 'ldC(b, t0 + m, g, k) * exp(csAt(b, h, t0 + m))',
          aLayout: 'mk',
          b: inPlace ? 'select(0.0, hp[hb + n * uniforms.Nn + k], c > 0)' : 'hp[hb + n * uniforms.Nn + k]',
          bLayout: 'nk',
        },
        // raw (backward) leaves out the diagonal j = i: see the note on stable decay gradients below
        yIntraChunk(!raw),
      ],
      epilogue: raw ? 'let t = t0 + m; if (t < uniforms.Lq) { result[xIdx(b, t, h, n)] = v; }' : Y_OUT,
    },
    g.tile,
  );
  return run(be, g, prog, [i.x, i.C, dtc, cb, hp, i.D, i.z]);
}

export function sliceCopy(be: KernelBackend, g: SsdGeom, src: TensorInfo, outShape: number[], offset: string, key: string): TensorInfo {
  const n = util.sizeFromShape(outShape);
  const prog = new MapProgram(`copy_${key}`, ['src'], outShape, n, `${n}`, `result[index] = src[${offset}];`);
  return run(be, g, prog, [src]);
}

// ---- kernels ----

export const ssdForwardWebGPU: KernelFunc = ({ inputs, backend: b0, attrs }) => {
  const backend = b0 as KernelBackend;
  const i = inputs as unknown as Inputs;
  const g = geom(i.x, i.B, attrs as unknown as SsdAttrs);
  const dtc = dtcPass(backend, g, i);
  const cb = cbPass(backend, g, i);
  const st = statesPass(backend, g, i, dtc);
  // without initial states the chunk states become the passed states in place: H_c in slot c - 1
  const inPlace = (g.flags & F_HASINIT) === 0;
  const hp = inPlace ? passInPlace(backend, g, st, dtc) : passPass(backend, g, i, st, dtc);
  if (!inPlace) disposeIntermediate(backend, st);
  const y = yPass(backend, g, i, dtc, cb, hp, false, inPlace);
  if (!(attrs as unknown as SsdAttrs).returnFinal) {
    disposeIntermediate(backend, dtc, cb, hp);
    return [y];
  }
  const PN = g.P * g.N;
  const slots = inPlace ? g.Nc : g.Nc + 1;
  // H_Nc of each batch row (the last slot) is the final state
  const fin = sliceCopy(
    backend,
    g,
    hp,
    [g.Bz, g.H, g.P, g.N],
    `(index / ${g.H * PN}) * ${slots * g.H * PN} + ${(slots - 1) * g.H * PN} + index % ${g.H * PN}`,
    inPlace ? 'final_ip' : 'final',
  );
  disposeIntermediate(backend, dtc, cb, hp);
  return [y, fin];
};

export const ssdBackwardWebGPU: KernelFunc = ({ inputs, backend: b0, attrs }) => {
  const be = b0 as KernelBackend;
  const i = inputs as unknown as Inputs;
  const a = attrs as unknown as SsdAttrs;
  const g = geom(i.x, i.B, a);
  const { Bz, L, H, P, G, N, Q, Nc } = g;
  const PN = P * N;
  const BLH = Bz * L * H;
  const nx = BLH * P;
  // recompute the forward intermediates
  const dtc = dtcPass(be, g, i);
  const cb = cbPass(be, g, i);
  const st = statesPass(be, g, i, dtc);
  const hp = passPass(be, g, i, st, dtc);
  disposeIntermediate(be, st);
  // Stable decay gradients: d(log-decay) sums products over (source j, target i) pairs straddling a token;
  // each carries exp(cs_i - cs_j), tiny under strong decay. Forming it as (dy·y) - (x·dX) would cancel two
  // O(1) numbers through the j = i pairs and leave float32 noise, so the diagonal j = i and the last token's
  // own state term are kept apart from the sums that feed it (and added back where dx and dz need them).
  const ys = yPass(be, g, i, dtc, cb, hp, true); // SSM part of y without the j = i term, before D and the gate
  // dy through the gate
  const dyg = run(
    be,
    g,
    new MapProgram(
      'dyg',
      ['dyIn', 'zIn'],
      [nx],
      nx,
      `${nx}`,
      `var v = dyIn[index]; if (hasFlag(${F_HASZ})) { let zv = zIn[index]; v = v * zv * sigm(zv); } result[index] = v;`,
    ),
    [i.dy, i.z],
  );
  // Gy_c = Σ_i exp(cs_i) dy_i C_iᵀ: the part of dL/dH_c that comes from chunk c's outputs
  const gy = run(
    be,
    g,
    new GemmProgram(
      'gy',
      ['dyg', 'cIn', 'dtc'],
      [Bz * Nc * H * PN],
      { M: P, N, batch: Bz * Nc * H },
      {
        batchDecl: BATCH_CH,
        phases: [
          {
            kMax: 'uniforms.Qc',
            a: 'ldDy(b, t0 + k, h, m) * exp(csAt(b, h, t0 + k))',
            aLayout: 'km',
            b: 'ldC(b, t0 + k, g, n)',
            bLayout: 'kn',
          },
        ],
        epilogue: 'result[stBase(b, c, h) + m * uniforms.Nn + n] = v;',
      },
      g.tile,
    ),
    [dyg, i.C, dtc],
  );
  // reverse state passing: G_c = dL/dH_c, plus per-chunk partial sums of K_c = exp(cs_last) <G_{c+1}, H_c>
  const nW = Math.ceil(PN / 256);
  const gsSize = Bz * (Nc + 1) * H * PN + Bz * Nc * H * nW;
  const gs = run(be, g, new BackPassProgram(gsSize, Bz * H * nW), [gy, hp, dtc, i.dFinal], {
    gemm: { M: 0, N: 0, Tm: 0, Tn: 0, Tot: Bz * H * nW },
    aux: nW,
  });
  disposeIntermediate(be, gy);
  // dXd_j = exp(cs_last - cs_j) G_{c+1} B_j (state part) + Σ_{i>j} CB_ij exp(cs_i - cs_j) dy_i (strict diagonal part)
  const dxdSt = run(
    be,
    g,
    new GemmProgram(
      'dxd_st',
      ['bIn', 'gs', 'dtc'],
      [nx],
      { M: Q, N: P, batch: Bz * Nc * H },
      {
        batchDecl: `${BATCH_CH}
  let gb = hpBase(b, c + 1, h);
  let csl = csAt(b, h, t0 + uniforms.Qc - 1);`,
        phases: [
          {
            kMax: 'uniforms.Nn',
            // the row's decay folded into A (no second set of accumulators)
            a: 'ldB(b, t0 + m, g, k) * exp(csl - csAt(b, h, t0 + m))',
            aLayout: 'mk',
            b: 'gs[gb + n * uniforms.Nn + k]',
            bLayout: 'nk',
          },
        ],
        epilogue: 'let t = t0 + m; if (t < uniforms.Lq) { result[xIdx(b, t, h, n)] = v; }',
      },
      g.tile,
    ),
    [i.B, gs, dtc],
  );
  const dxdDg = run(
    be,
    g,
    new GemmProgram(
      'dxd_dg',
      ['cb', 'dyg', 'dtc'],
      [nx],
      { M: Q, N: P, batch: Bz * Nc * H },
      {
        batchDecl: BATCH_CH,
        phases: [
          {
            kMax: 'uniforms.Qc',
            kBeg: 'm0',
            a: 'select(0.0, cb[cbIdx(b, c, g, max(k, m), m)] * exp(csAt(b, h, t0 + max(k, m)) - csAt(b, h, t0 + m)), k > m)',
            aLayout: 'km',
            b: 'ldDy(b, t0 + k, h, n)',
            bLayout: 'kn',
          },
        ],
        epilogue: 'let t = t0 + m; if (t < uniforms.Lq) { result[xIdx(b, t, h, n)] = v; }',
      },
      g.tile,
    ),
    [cb, dyg, dtc],
  );
  const tokenDecl = `let p = index % uniforms.Pp;
  let h = (index / uniforms.Pp) % uniforms.Hh;
  let t = (index / (uniforms.Pp * uniforms.Hh)) % uniforms.Lq;
  let b = index / (uniforms.Pp * uniforms.Hh * uniforms.Lq);
  let cbd = cb[cbIdx(b, t / uniforms.Qc, h / (uniforms.Hh / uniforms.Gg), t % uniforms.Qc, t % uniforms.Qc)]; // C_t · B_t`;
  const dx = run(
    be,
    g,
    new MapProgram(
      'dx',
      ['dxdSt', 'dxdDg', 'dyg', 'dtc', 'dIn', 'cb'],
      i.x.shape,
      nx,
      `${nx}`,
      `${tokenDecl}
  result[index] = dtpAt(b, h, t) * (dxdSt[index] + dxdDg[index] + cbd * dyg[index]) + dVal(h, p) * dyg[index];`,
    ),
    [dxdSt, dxdDg, dyg, dtc, i.D, cb],
  );
  // per token and head (sums over P): r = dy·y_ssm (no j = i term), ust = x·dXd_state, udg = x·dXd_diag (i > j), xdy = x·dy
  const ru = run(be, g, new RowDotsProgram(BLH), [dyg, ys, i.x, dxdSt, dxdDg]); // [4·BLH]
  // d log-decay of token k: da_k = K_c + Σ_{j<k} dt'_j ust_j + Σ_{i>=k} (r_i - dt'_i udg_i), with
  // K_c = exp(cs_last) <G_{c+1}, H_c>; then ddt' = da A + x·dXd and dA = Σ da dt'
  const ddtAll = run(
    be,
    g,
    new MapProgram(
      'ddt',
      ['ru', 'gs', 'dtc', 'dtIn', 'aIn', 'biasIn', 'cb'],
      [BLH + Bz * Nc * H],
      Bz * H * Nc,
      'uniforms.Bz * uniforms.Hh * uniforms.Nc',
      `let c = index % uniforms.Nc;
  let h = (index / uniforms.Nc) % uniforms.Hh;
  let b = index / (uniforms.Nc * uniforms.Hh);
  let g = h / (uniforms.Hh / uniforms.Gg);
  let nW = uniforms.aux;
  let eOff = uniforms.Bz * (uniforms.Nc + 1) * uniforms.Hh * uniforms.Pp * uniforms.Nn + ((b * uniforms.Nc + c) * uniforms.Hh + h) * nW;
  var K = 0.0;
  for (var w = 0; w < nW; w++) { K += gs[eOff + w]; }
  let A = aIn[h];
  var bias = 0.0;
  if (hasFlag(${F_HASBIAS})) { bias = biasIn[h]; }
  // forward sweep: exclusive prefix of dt' ust, parked in the output slot
  var pre = 0.0;
  for (var q = 0; q < uniforms.Qc; q++) {
    let t = c * uniforms.Qc + q;
    if (t < uniforms.Lq) {
      let ix = (b * uniforms.Lq + t) * uniforms.Hh + h;
      result[ix] = pre;
      pre += dtpAt(b, h, t) * ru[${BLH} + ix];
    }
  }
  var rev = 0.0;
  var dA = 0.0;
  for (var q = uniforms.Qc - 1; q >= 0; q--) {
    let t = c * uniforms.Qc + q;
    if (t < uniforms.Lq) {
      let ix = (b * uniforms.Lq + t) * uniforms.Hh + h;
      let d = dtpAt(b, h, t);
      let udg = ru[${2 * BLH} + ix];
      rev += ru[ix] - d * udg;
      let da = K + result[ix] + rev;
      dA += da * d;
      let xdx = ru[${BLH} + ix] + udg + cb[cbIdx(b, c, g, q, q)] * ru[${3 * BLH} + ix];
      result[ix] = (da * A + xdx) * procDt(dtIn[ix] + bias).y;
    }
  }
  result[${BLH} + (b * uniforms.Nc + c) * uniforms.Hh + h] = dA;`,
    ),
    [ru, gs, dtc, i.dt, i.A, i.dtBias, cb],
    { aux: nW },
  );
  disposeIntermediate(be, ru);
  const ddt = sliceCopy(be, g, ddtAll, i.dt.shape, 'index', 'ddt');
  const names = (srcs: TensorInfo[]) => (srcs.length === 1 ? ['src'] : ['src', 'src2']);
  const reduce = (srcs: TensorInfo[], outShape: number[], M: number, K: number, R: number, base: number) => {
    // few outputs over long sums: slices over several workgroups per output, then one more sum
    const S = Math.max(1, Math.min(Math.ceil(REDUCE_WORKGROUPS / M), Math.ceil((R * K) / REDUCE_MIN_TERMS)));
    const per = Math.ceil(R / S);
    const slices = Math.ceil(R / per);
    const pass = (inputs: TensorInfo[], shape: number[], k: number, r: number, rows: number, n: number, b: number) =>
      run(be, g, new ReduceProgram(names(inputs), shape, M, n), inputs, { gemm: { M, N: k, Tm: r, Tn: rows, Tot: n }, aux: b });
    if (slices === 1) return pass(srcs, outShape, K, R, R, 1, base);
    const parts = pass(srcs, [slices * M], K, R, per, slices, base);
    const out = pass([parts], outShape, 1, slices, slices, 1, 0);
    disposeIntermediate(be, parts);
    return out;
  };
  const dA = reduce([ddtAll], [H], H, 1, Bz * Nc, BLH);
  const zero = () =>
    (be as unknown as { makeTensorInfo(s: number[], d: string, v: Float32Array): TensorInfo }).makeTensorInfo(
      [1],
      'float32',
      new Float32Array(1),
    );
  const dBias = a.hasBias ? reduce([ddtAll], [H], H, 1, Bz * L, 0) : zero();
  disposeIntermediate(be, ddtAll);
  const dD = !a.hasD ? zero() : a.dPerChannel ? reduce([dyg, i.x], [H, P], H * P, 1, Bz * L, 0) : reduce([dyg, i.x], [H], H, P, Bz * L, 0);
  const dz = !a.hasZ
    ? zero()
    : run(
        be,
        g,
        new MapProgram(
          'dz',
          ['dyIn', 'ys', 'xIn', 'zIn', 'dIn', 'cb', 'dtc'],
          i.x.shape,
          nx,
          `${nx}`,
          `${tokenDecl}
  let zv = zIn[index];
  let sg = sigm(zv);
  let yfull = ys[index] + (cbd * dtpAt(b, h, t) + dVal(h, p)) * xIn[index];
  result[index] = dyIn[index] * yfull * sg * (1.0 + zv * (1.0 - sg));`,
        ),
        [i.dy, ys, i.x, i.z, i.D, cb, dtc],
      );
  disposeIntermediate(be, ys);
  // dCB_ij = Σ_{h in group} exp(cs_i - cs_j) dy_i · Xd_j (i >= j), one K segment of P per head
  const dcb = run(
    be,
    g,
    new GemmProgram(
      'dcb',
      ['dyg', 'xIn', 'dtc'],
      [Bz * Nc * G * Q * Q],
      { M: Q, N: Q, batch: Bz * Nc * G },
      {
        batchDecl: BATCH_CG,
        tileLive: 'n0 <= m0 + 63',
        phases: [
          {
            kMax: 'uniforms.Pp',
            nseg: 'hpg',
            segLen: 'uniforms.Pp',
            segDecl: 'let hh = g * hpg + s;',
            a: 'ldDy(b, t0 + m, hh, kl)',
            aLayout: 'mk',
            b: 'ldX(b, t0 + n, hh, kl) * dtpAt(b, hh, t0 + n)',
            bLayout: 'nk',
            scale: 'select(0.0, exp(csAt(b, hh, t0 + m) - csAt(b, hh, t0 + min(n, m))), n <= m)',
          },
        ],
        epilogue: 'result[cbIdx(b, c, g, m, n)] = v;',
      },
      g.tile,
    ),
    [dyg, i.x, dtc],
  );
  // dB_j = Σ_h exp(cs_last - cs_j) dt'_j G_{c+1}ᵀ x_j + Σ_{i>=j} dCB_ij C_i
  const dB = run(
    be,
    g,
    new GemmProgram(
      'dB',
      ['xIn', 'dtc', 'gs', 'dcb', 'cIn'],
      i.B.shape,
      { M: Q, N, batch: Bz * Nc * G },
      {
        batchDecl: BATCH_CG,
        phases: [
          {
            kMax: 'uniforms.Pp',
            nseg: 'hpg',
            segLen: 'uniforms.Pp',
            segDecl: 'let hh = g * hpg + s; let gb = hpBase(b, c + 1, hh); let csl = csAt(b, hh, t0 + uniforms.Qc - 1);',
            a: 'ldX(b, t0 + m, hh, kl) * dtpAt(b, hh, t0 + m) * exp(csl - csAt(b, hh, t0 + m))',
            aLayout: 'mk',
            b: 'gs[gb + kl * uniforms.Nn + n]',
            bLayout: 'kn',
          },
          {
            kMax: 'uniforms.Qc',
            kBeg: 'm0',
            a: 'select(0.0, dcb[cbIdx(b, c, g, max(k, m), m)], k >= m)',
            aLayout: 'km',
            b: 'ldC(b, t0 + k, g, n)',
            bLayout: 'kn',
          },
        ],
        epilogue: 'let t = t0 + m; if (t < uniforms.Lq) { result[bcIdx(b, t, g, n)] = v; }',
      },
      g.tile,
    ),
    [i.x, dtc, gs, dcb, i.C],
  );
  // dC_i = Σ_h exp(cs_i) H_cᵀ dy_i + Σ_{j<=i} dCB_ij B_j
  const dC = run(
    be,
    g,
    new GemmProgram(
      'dC',
      ['dyg', 'dtc', 'hp', 'dcb', 'bIn'],
      i.C.shape,
      { M: Q, N, batch: Bz * Nc * G },
      {
        batchDecl: BATCH_CG,
        phases: [
          {
            kMax: 'uniforms.Pp',
            nseg: 'hpg',
            segLen: 'uniforms.Pp',
            segDecl: 'let hh = g * hpg + s; let hb = hpBase(b, c, hh);',
            a: 'ldDy(b, t0 + m, hh, kl) * exp(csAt(b, hh, t0 + m))',
            aLayout: 'mk',
            b: 'hp[hb + kl * uniforms.Nn + n]',
            bLayout: 'kn',
          },
          {
            kMax: 'uniforms.Qc',
            kEnd: 'min(uniforms.Qc, m0 + 64)',
            a: 'select(0.0, dcb[cbIdx(b, c, g, m, min(k, m))], k <= m)',
            aLayout: 'mk',
            b: 'ldB(b, t0 + k, g, n)',
            bLayout: 'kn',
          },
        ],
        epilogue: 'let t = t0 + m; if (t < uniforms.Lq) { result[bcIdx(b, t, g, n)] = v; }',
      },
      g.tile,
    ),
    [dyg, dtc, hp, dcb, i.B],
  );
  const dInit = a.hasInit
    ? sliceCopy(be, g, gs, [Bz, H, P, N], `(index / ${H * PN}) * ${(Nc + 1) * H * PN} + index % ${H * PN}`, 'init')
    : zero();
  disposeIntermediate(be, dtc, cb, hp, dyg, gs, dxdSt, dxdDg, dcb);
  return [dx, ddt, dA, dB, dC, dD, dz, dBias, dInit];
};
