/**
 * The plain loops `attention`'s cpu and wasm kernels ran before attention-host.ts: one query row at a
 * time with an online softmax (float64 inside). Kept as the readable reference (exported from
 * `@t2md/dit/testing`); tests compare the kernels with them on fresh random inputs.
 */
import { LSE_EMPTY } from './attention-webgpu.js';

/** Sizes of one attention call. */
export interface AttentionDims {
  B: number;
  H: number;
  Lq: number;
  Lk: number;
  Dh: number;
}

/**
 * Forward on typed arrays, one query row at a time with an online softmax over keys (memory O(Dh)
 * per row beyond the inputs and outputs). `mask[b * Lk + j] == 0` drops key j of batch b.
 */
export function attentionForwardValues(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: Float32Array | undefined,
  d: AttentionDims,
  scale: number,
): { out: Float32Array; lse: Float32Array } {
  const { B, H, Lq, Lk, Dh } = d;
  const out = new Float32Array(B * H * Lq * Dh);
  const lse = new Float32Array(B * H * Lq);
  const acc = new Float64Array(Dh);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      for (let i = 0; i < Lq; i++) {
        const qo = (bh * Lq + i) * Dh;
        let m = Number.NEGATIVE_INFINITY;
        let l = 0;
        acc.fill(0);
        for (let j = 0; j < Lk; j++) {
          if (mask != null && mask[b * Lk + j] === 0) continue;
          const ko = (bh * Lk + j) * Dh;
          let s = 0;
          for (let c = 0; c < Dh; c++) s += q[qo + c] * k[ko + c];
          s *= scale;
          if (s > m) {
            const alpha = Math.exp(m - s);
            l *= alpha;
            for (let c = 0; c < Dh; c++) acc[c] *= alpha;
            m = s;
          }
          const p = Math.exp(s - m);
          l += p;
          for (let c = 0; c < Dh; c++) acc[c] += p * v[ko + c];
        }
        const inv = l > 0 ? 1 / l : 0;
        for (let c = 0; c < Dh; c++) out[qo + c] = acc[c] * inv;
        lse[bh * Lq + i] = l > 0 ? m + Math.log(l) : LSE_EMPTY;
      }
    }
  }
  return { out, lse };
}

/** Backward on typed arrays: one pass over (query, key) pairs accumulating dq, dk, dv. */
export function attentionBackwardValues(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: Float32Array | undefined,
  out: Float32Array,
  lse: Float32Array,
  dy: Float32Array,
  d: AttentionDims,
  scale: number,
): { dq: Float32Array; dk: Float32Array; dv: Float32Array } {
  const { B, H, Lq, Lk, Dh } = d;
  const dq = new Float32Array(q.length);
  const dk = new Float32Array(k.length);
  const dv = new Float32Array(v.length);
  const dqi = new Float64Array(Dh);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      for (let i = 0; i < Lq; i++) {
        const L = lse[bh * Lq + i];
        if (L >= LSE_EMPTY) continue; // every key masked: zero output, zero gradients
        const qo = (bh * Lq + i) * Dh;
        let D = 0;
        for (let c = 0; c < Dh; c++) D += dy[qo + c] * out[qo + c];
        dqi.fill(0);
        for (let j = 0; j < Lk; j++) {
          if (mask != null && mask[b * Lk + j] === 0) continue;
          const ko = (bh * Lk + j) * Dh;
          let s = 0;
          let dp = 0;
          for (let c = 0; c < Dh; c++) {
            s += q[qo + c] * k[ko + c];
            dp += dy[qo + c] * v[ko + c];
          }
          const p = Math.exp(s * scale - L);
          const ds = p * (dp - D) * scale;
          for (let c = 0; c < Dh; c++) {
            dqi[c] += ds * k[ko + c];
            dk[ko + c] += ds * q[qo + c];
            dv[ko + c] += p * dy[qo + c];
          }
        }
        for (let c = 0; c < Dh; c++) dq[qo + c] = dqi[c];
      }
    }
  }
  return { dq, dk, dv };
}
