/**
 * The SSD scan on typed arrays for the cpu and wasm backends: the plain token-by-token recurrence in
 * float64 JS numbers, forward and backward (the reverse-time adjoint recurrence, recomputing states
 * from checkpoints so memory stays O(L/K + K) states per head).
 */
import type { SsdAttrs, SsdDims } from './types.js';

export interface SsdArrays {
  x: Float32Array;
  dt: Float32Array;
  A: Float32Array;
  B: Float32Array;
  C: Float32Array;
  D: Float32Array;
  z: Float32Array;
  dtBias: Float32Array;
  initialStates: Float32Array;
}

/** softplus?(u), before the clamp (as torch/triton: softplus(u) = u above 20). */
function dtUnclamped(u: number, a: SsdAttrs): number {
  return a.dtSoftplus && u <= 20 ? Math.log1p(Math.exp(u)) : u;
}

/**
 * dt' = clamp(softplus?(dt + bias)) alone: the wasm forward's hot loop, without processDt's pair.
 * Self-contained (dtUnclamped written out): the SIMD scan's second thread runs its source text.
 */
export function dtValue(raw: number, bias: number, a: Pick<SsdAttrs, 'dtSoftplus' | 'dtClamp' | 'dtMin' | 'dtMax'>): number {
  const u = raw + bias;
  const v = a.dtSoftplus && u <= 20 ? Math.log1p(Math.exp(u)) : u;
  if (a.dtClamp) {
    if (v < a.dtMin) return a.dtMin;
    if (v > a.dtMax) return a.dtMax;
  }
  return v;
}

/** dtValue's dt' and d dt' / d dt (0 where clamped). */
export function processDt(raw: number, bias: number, a: SsdAttrs): [number, number] {
  const u = raw + bias;
  const v = dtUnclamped(u, a);
  if (a.dtClamp) {
    if (v < a.dtMin) return [a.dtMin, 0];
    if (v > a.dtMax) return [a.dtMax, 0];
  }
  if (!a.dtSoftplus || u > 20) return [v, 1];
  const e = Math.exp(u);
  return [v, e / (1 + e)];
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** Forward: y [B, L, H, P] and finalStates [B, H, P, N]. */
export function ssdForwardValues(s: SsdArrays, d: SsdDims, a: SsdAttrs): { y: Float32Array; finalStates: Float32Array } {
  const { batch: Bz, seqlen: L, nheads: H, headdim: P, ngroups: G, dstate: N } = d;
  const hpg = H / G;
  const y = new Float32Array(Bz * L * H * P);
  const fin = new Float32Array(Bz * H * P * N);
  const st = new Float64Array(P * N);
  for (let b = 0; b < Bz; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / hpg);
      const A = s.A[h];
      const bias = a.hasBias ? s.dtBias[h] : 0;
      initState(st, s, a, b, h, P * N);
      for (let t = 0; t < L; t++) {
        const [dtp] = processDt(s.dt[(b * L + t) * H + h], bias, a);
        const dec = Math.exp(dtp * A);
        const xo = ((b * L + t) * H + h) * P;
        const bo = ((b * L + t) * G + g) * N;
        for (let p = 0; p < P; p++) {
          const xd = dtp * s.x[xo + p];
          let acc = 0;
          for (let n = 0; n < N; n++) {
            const v = dec * st[p * N + n] + xd * s.B[bo + n];
            st[p * N + n] = v;
            acc += v * s.C[bo + n];
          }
          let out = acc + dAt(s, a, h, p, P) * s.x[xo + p];
          if (a.hasZ) {
            const zv = s.z[xo + p];
            out *= zv * sigmoid(zv);
          }
          y[xo + p] = out;
        }
      }
      const fo = (b * H + h) * P * N;
      for (let i = 0; i < P * N; i++) fin[fo + i] = st[i];
    }
  }
  return { y, finalStates: fin };
}

function initState(st: Float64Array, s: SsdArrays, a: SsdAttrs, b: number, h: number, PN: number): void {
  const H = s.A.length;
  if (a.hasInit) for (let i = 0; i < PN; i++) st[i] = s.initialStates[(b * H + h) * PN + i];
  else st.fill(0);
}

function dAt(s: SsdArrays, a: SsdAttrs, h: number, p: number, P: number): number {
  if (!a.hasD) return 0;
  return a.dPerChannel ? s.D[h * P + p] : s.D[h];
}

export interface SsdGradArrays {
  x: Float32Array;
  dt: Float32Array;
  A: Float32Array;
  B: Float32Array;
  C: Float32Array;
  D: Float32Array;
  z: Float32Array;
  dtBias: Float32Array;
  initialStates: Float32Array;
}

/**
 * Backward: gradients of every input given dy [B, L, H, P] and dFinal [B, H, P, N]. Inputs that are
 * absent (placeholders) get a zero gradient of their placeholder's length.
 */
export function ssdBackwardValues(s: SsdArrays, dy: Float32Array, dFinal: Float32Array, d: SsdDims, a: SsdAttrs): SsdGradArrays {
  const { batch: Bz, seqlen: L, nheads: H, headdim: P, ngroups: G, dstate: N } = d;
  const hpg = H / G;
  const PN = P * N;
  const gx = new Float64Array(s.x.length);
  const gdt = new Float32Array(s.dt.length);
  const gA = new Float64Array(H);
  const gB = new Float64Array(s.B.length);
  const gC = new Float64Array(s.C.length);
  const gD = new Float64Array(s.D.length);
  const gz = new Float32Array(s.z.length);
  const gBias = new Float64Array(s.dtBias.length);
  const gInit = new Float32Array(s.initialStates.length);
  const K = Math.max(1, Math.min(64, Math.ceil(Math.sqrt(L)))); // checkpoint every K tokens
  const nBlocks = Math.ceil(L / K);
  const checkpoints = new Float64Array(nBlocks * PN); // state before each block's first token
  const blockStates = new Float64Array((K + 1) * PN); // states before/after each token of a block
  const g = new Float64Array(PN); // adjoint of the current state
  const dyr = new Float64Array(P);
  const dts = new Float64Array(L);
  const dfac = new Float64Array(L);
  const st = new Float64Array(PN);
  for (let b = 0; b < Bz; b++) {
    for (let h = 0; h < H; h++) {
      const grp = Math.floor(h / hpg);
      const A = s.A[h];
      const bias = a.hasBias ? s.dtBias[h] : 0;
      for (let t = 0; t < L; t++) [dts[t], dfac[t]] = processDt(s.dt[(b * L + t) * H + h], bias, a);
      // forward, keeping a checkpoint every K tokens
      initState(st, s, a, b, h, PN);
      for (let t = 0; t < L; t++) {
        if (t % K === 0) checkpoints.set(st, (t / K) * PN);
        step(st, st, s, b, t, h, grp, dts[t], A, d);
      }
      const fo = (b * H + h) * PN;
      for (let i = 0; i < PN; i++) g[i] = dFinal[fo + i];
      let sumDtBias = 0;
      for (let blk = nBlocks - 1; blk >= 0; blk--) {
        const t0 = blk * K;
        const t1 = Math.min(L, t0 + K);
        blockStates.set(checkpoints.subarray(blk * PN, (blk + 1) * PN), 0);
        for (let t = t0; t < t1; t++) {
          step(
            blockStates.subarray((t - t0 + 1) * PN, (t - t0 + 2) * PN),
            blockStates.subarray((t - t0) * PN, (t - t0 + 1) * PN),
            s,
            b,
            t,
            h,
            grp,
            dts[t],
            A,
            d,
          );
        }
        for (let t = t1 - 1; t >= t0; t--) {
          const cur = (t - t0 + 1) * PN; // state after token t
          const prev = (t - t0) * PN; // state before token t
          const dtp = dts[t];
          const dec = Math.exp(dtp * A);
          const xo = ((b * L + t) * H + h) * P;
          const bo = ((b * L + t) * G + grp) * N;
          for (let p = 0; p < P; p++) {
            const dv = dAt(s, a, h, p, P);
            let r = dy[xo + p];
            if (a.hasZ) {
              let yraw = dv * s.x[xo + p];
              for (let n = 0; n < N; n++) yraw += blockStates[cur + p * N + n] * s.C[bo + n];
              const zv = s.z[xo + p];
              const sg = sigmoid(zv);
              gz[xo + p] = r * yraw * sg * (1 + zv * (1 - sg));
              r *= zv * sg;
            }
            dyr[p] = r;
            if (a.hasD) {
              if (a.dPerChannel) gD[h * P + p] += r * s.x[xo + p];
              else gD[h] += r * s.x[xo + p];
            }
            gx[xo + p] += dv * r;
          }
          // y_t = state_t C_t: dC and the adjoint of state_t
          for (let n = 0; n < N; n++) {
            let acc = 0;
            for (let p = 0; p < P; p++) {
              acc += blockStates[cur + p * N + n] * dyr[p];
              g[p * N + n] += dyr[p] * s.C[bo + n];
            }
            gC[bo + n] += acc;
          }
          // state_t = dec state_{t-1} + dt' x_t B_t^T
          let dDec = 0;
          let dXB = 0;
          for (let p = 0; p < P; p++) {
            const xp = s.x[xo + p];
            let accX = 0;
            for (let n = 0; n < N; n++) {
              const gv = g[p * N + n];
              accX += gv * s.B[bo + n];
              dDec += gv * blockStates[prev + p * N + n];
            }
            gx[xo + p] += dtp * accX;
            dXB += accX * xp;
          }
          for (let n = 0; n < N; n++) {
            let acc = 0;
            for (let p = 0; p < P; p++) acc += g[p * N + n] * s.x[xo + p];
            gB[bo + n] += dtp * acc;
          }
          const dDtp = dXB + dDec * dec * A;
          gA[h] += dDec * dec * dtp;
          const dRaw = dDtp * dfac[t];
          gdt[(b * L + t) * H + h] = dRaw;
          sumDtBias += dRaw;
          for (let i = 0; i < PN; i++) g[i] *= dec;
        }
      }
      if (a.hasBias) gBias[h] += sumDtBias;
      if (a.hasInit) for (let i = 0; i < PN; i++) gInit[fo + i] = g[i];
    }
  }
  return {
    x: Float32Array.from(gx),
    dt: gdt,
    A: Float32Array.from(gA),
    B: Float32Array.from(gB),
    C: Float32Array.from(gC),
    D: Float32Array.from(gD),
    z: gz,
    dtBias: Float32Array.from(gBias),
    initialStates: gInit,
  };
}

/** out = exp(dt' A) prev + dt' x_t B_t^T for one (b, t, h); out may alias prev. */
function step(
  out: Float64Array,
  prev: Float64Array,
  s: SsdArrays,
  b: number,
  t: number,
  h: number,
  grp: number,
  dtp: number,
  A: number,
  d: SsdDims,
): void {
  const { seqlen: L, nheads: H, headdim: P, ngroups: G, dstate: N } = d;
  const dec = Math.exp(dtp * A);
  const xo = ((b * L + t) * H + h) * P;
  const bo = ((b * L + t) * G + grp) * N;
  for (let p = 0; p < P; p++) {
    const xd = dtp * s.x[xo + p];
    for (let n = 0; n < N; n++) out[p * N + n] = dec * prev[p * N + n] + xd * s.B[bo + n];
  }
}
