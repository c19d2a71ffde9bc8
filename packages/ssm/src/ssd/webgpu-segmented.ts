/**
 * The 'segmented' WebGPU forward of the SSD scan (SsdScanOptions.variant; issue 23): the chunk-state
 * GEMM and the state passing in one program, so the [B, Nc, H, P, N] chunk states are written once
 * and never read back and rewritten by a pass of their own.
 *
 * The chunks are cut into segments of `cps` chunks. One workgroup per (b, segment, h, 64×64 tile of
 * P×N) walks its segment's chunks in order, keeping the state in registers:
 *   loc_c = exp(cs_last(c)) loc_{c-1} + S_c      (loc = 0 entering the segment)
 * and writes loc_c, the local state leaving chunk c, into slot c. A short pass then carries the
 * states across segments (reading one slot per segment):
 *   E_{k+1} = exp(Σ_{c in segment k} cs_last(c)) E_k + loc_{last chunk of k}     (E_0 = initial or 0)
 * and the y pass forms the state entering chunk c of segment k while loading it:
 *   H_c = loc_{c-1} + exp(Σ_{c0 <= c' < c} cs_last(c')) E_k     (loc_{c0 - 1} = 0)
 * which equals the chunked forward's H_c in exact arithmetic. Every decay is a product of per-chunk
 * decays (a sum of cumsum totals, each ≤ 0), never a ratio. Segments give the fused pass its
 * parallelism: one sequential walk per (b, h, tile) alone is 144 workgroups at 36 heads × 64 × 256.
 */

import { disposeIntermediate } from '@t2md/core';
import type { KernelBackend, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { SsdAttrs } from './types.js';
import { cbPass, dtcPass, geom, PASS_STATE, run, sliceCopy, Y_OUT, yIntraChunk } from './webgpu.js';
import { F_HASINIT, GemmProgram, MapProgram, type SsdGeom } from './webgpu-programs.js';

type Inputs = Record<string, TensorInfo>;

/** Workgroups the fused state pass aims for: 8 per SM of an H100 (132 SMs). */
const SEGMENT_WORKGROUPS = 1056;

/** Chunks per segment: the attr when set, else the fewest that still give SEGMENT_WORKGROUPS workgroups. */
export function segmentChunks(g: Pick<SsdGeom, 'Bz' | 'H' | 'P' | 'N' | 'Nc'>, asked: number): number {
  if (asked > 0) return Math.min(asked, g.Nc);
  const tiles = g.Bz * g.H * Math.ceil(g.P / 64) * Math.ceil(g.N / 64);
  const segments = Math.min(g.Nc, Math.max(1, Math.ceil(SEGMENT_WORKGROUPS / tiles)));
  return Math.ceil(g.Nc / segments);
}

/** Segment count and bounds from the uniforms (aux = chunks per segment). */
const SEGMENTS = 'let nS = (uniforms.Nc + uniforms.aux - 1) / uniforms.aux;';

/** Local chunk states: slot c holds loc_c, the state leaving chunk c from zero at its segment's start. [B, Nc, H, P, N] */
function localStatesPass(be: KernelBackend, g: SsdGeom, i: Inputs, dtc: TensorInfo, cps: number): TensorInfo {
  const S = Math.ceil(g.Nc / cps);
  const prog = new GemmProgram(
    'states_seg',
    ['xIn', 'bIn', 'dtc'],
    [g.Bz * g.Nc * g.H * g.P * g.N],
    { M: g.P, N: g.N, batch: g.Bz * S * g.H },
    {
      batchDecl: `${SEGMENTS}
  let b = bat / (nS * uniforms.Hh);
  let sg = (bat / uniforms.Hh) % nS;
  let h = bat % uniforms.Hh;
  let hpg = uniforms.Hh / uniforms.Gg;
  let g = h / hpg;
  let c0 = sg * uniforms.aux;
  let c1 = min(c0 + uniforms.aux, uniforms.Nc);
  let t0 = c0 * uniforms.Qc;`,
      phases: [
        {
          // one K segment per chunk: k = s·Q + kl runs over the segment's tokens; the loop runs the
          // uniform cps times (the last segment may be shorter: its extra turns do no work)
          kMax: 'uniforms.Qc',
          nseg: 'uniforms.aux',
          segLen: 'uniforms.Qc',
          segLive: 'c0 + s < c1',
          segDecl: 'let csl = csAt(b, h, min(t0 + s * uniforms.Qc + uniforms.Qc - 1, uniforms.Lp - 1));',
          a: 'ldX(b, t0 + k, h, m) * dtpAt(b, h, t0 + k) * exp(csl - csAt(b, h, t0 + k))',
          aLayout: 'km',
          b: 'ldB(b, t0 + k, g, n)',
          bLayout: 'kn',
          carry: 'exp(csl)',
          segEpilogue: 'result[stBase(b, c0 + s, h) + m * uniforms.Nn + n] = v;',
        },
      ],
      epilogue: '',
    },
    g.tile,
  );
  return run(be, g, prog, [i.x, i.B, dtc], { aux: cps });
}

/** States entering each segment, E_0 = initial (or 0), ..., E_S = final: [B, S + 1, H, P, N]. */
function segmentPass(be: KernelBackend, g: SsdGeom, i: Inputs, loc: TensorInfo, dtc: TensorInfo, cps: number): TensorInfo {
  const PN = g.P * g.N;
  const S = Math.ceil(g.Nc / cps);
  const prog = new MapProgram(
    'segpass',
    ['locSt', 'dtc', 'initIn'],
    [g.Bz * (S + 1) * g.H * PN],
    g.Bz * g.H * PN,
    'uniforms.Bz * uniforms.Hh * uniforms.Pp * uniforms.Nn',
    `${PASS_STATE}
  ${SEGMENTS}
  if (hasFlag(${F_HASINIT})) { s = initIn[index]; }
  result[(b * (nS + 1) * uniforms.Hh + h) * PN + pn] = s;
  for (var sg = 0; sg < nS; sg++) {
    let c0 = sg * uniforms.aux;
    let c1 = min(c0 + uniforms.aux, uniforms.Nc);
    var lg = 0.0;
    for (var c = c0; c < c1; c++) { lg += csAt(b, h, c * uniforms.Qc + uniforms.Qc - 1); }
    s = exp(lg) * s + locSt[stBase(b, c1 - 1, h) + pn];
    result[((b * (nS + 1) + sg + 1) * uniforms.Hh + h) * PN + pn] = s;
  }`,
  );
  return run(be, g, prog, [loc, dtc, i.initialStates], { aux: cps });
}

/** y as the chunked forward's yPass (not raw), with H_c formed from loc and E while loading. [B, L, H, P] */
function ySegPass(
  be: KernelBackend,
  g: SsdGeom,
  i: Inputs,
  dtc: TensorInfo,
  cb: TensorInfo,
  loc: TensorInfo,
  seg: TensorInfo,
  cps: number,
): TensorInfo {
  const prog = new GemmProgram(
    'y_seg',
    ['xIn', 'cIn', 'dtc', 'cb', 'locSt', 'segSt', 'dIn', 'zIn'],
    [g.Bz, g.L, g.H, g.P],
    { M: g.Q, N: g.P, batch: g.Bz * g.Nc * g.H },
    {
      batchDecl: `let b = bat / (uniforms.Nc * uniforms.Hh);
  let c = (bat / uniforms.Hh) % uniforms.Nc;
  let h = bat % uniforms.Hh;
  let hpg = uniforms.Hh / uniforms.Gg;
  let g = h / hpg;
  let t0 = c * uniforms.Qc;
  ${SEGMENTS}
  let sg = c / uniforms.aux;
  let c0 = sg * uniforms.aux;
  // the decay from the segment's start to chunk c, summed in segmentPass's order
  var lg = 0.0;
  for (var cc = c0; cc < c; cc++) { lg += csAt(b, h, cc * uniforms.Qc + uniforms.Qc - 1); }
  let dl = exp(lg);
  let hasLoc = c > c0;
  let lb = stBase(b, max(c - 1, 0), h);
  let eb = ((b * (nS + 1) + sg) * uniforms.Hh + h) * uniforms.Pp * uniforms.Nn;`,
      phases: [
        {
          kMax: 'uniforms.Nn',
          // the row's decay folded into A (no second set of accumulators)
          a: 'ldC(b, t0 + m, g, k) * exp(csAt(b, h, t0 + m))',
          aLayout: 'mk',
          b: 'select(0.0, locSt[lb + n * uniforms.Nn + k], hasLoc) + dl * segSt[eb + n * uniforms.Nn + k]',
          bLayout: 'nk',
        },
        yIntraChunk(true),
      ],
      epilogue: Y_OUT,
    },
    g.tile,
  );
  return run(be, g, prog, [i.x, i.C, dtc, cb, loc, seg, i.D, i.z], { aux: cps });
}

/** The forward kernel of the 'segmented' variant: outputs as ssdForwardWebGPU's. */
export const ssdForwardSegmented: KernelFunc = ({ inputs, backend: b0, attrs }) => {
  const backend = b0 as KernelBackend;
  const i = inputs as unknown as Inputs;
  const a = attrs as unknown as SsdAttrs;
  const g = geom(i.x, i.B, a);
  const cps = segmentChunks(g, a.segmentChunks);
  const S = Math.ceil(g.Nc / cps);
  const dtc = dtcPass(backend, g, i);
  const cb = cbPass(backend, g, i);
  const loc = localStatesPass(backend, g, i, dtc, cps);
  const seg = segmentPass(backend, g, i, loc, dtc, cps);
  const y = ySegPass(backend, g, i, dtc, cb, loc, seg, cps);
  disposeIntermediate(backend, dtc, cb, loc);
  if (!a.returnFinal) {
    disposeIntermediate(backend, seg);
    return [y];
  }
  // E_S of each batch row is the final state
  const HPN = g.H * g.P * g.N;
  const fin = sliceCopy(
    backend,
    g,
    seg,
    [g.Bz, g.H, g.P, g.N],
    `(index / ${HPN}) * ${(S + 1) * HPN} + ${S * HPN} + index % ${HPN}`,
    'final_seg',
  );
  disposeIntermediate(backend, seg);
  return [y, fin];
};
