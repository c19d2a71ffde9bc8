/**
 * Kernels of `attention`: the forward `T2mdAttention` (outputs out and the per-row log-sum-exp L) and
 * the backward `T2mdAttentionGrad` (outputs dq, dk, dv), for cpu, wasm and webgpu, plus the gradient.
 *
 * Backward follows FlashAttention-2 (Dao 2023, Alg. 2): nothing of size Lq x Lk is kept; P is
 * recomputed from S and L as exp(S - L), with D_i = rowsum(dO ∘ O) and dS = P ∘ (dP - D).
 */
import { disposeIntermediate, runProgram, typedArrayKernel } from '@t2md/core';
import type { KernelBackend, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import {
  AttentionForwardProgram,
  AttentionGradKVProgram,
  AttentionGradQProgram,
  attentionUniforms,
  CopyRangeProgram,
  LSE_EMPTY,
  RowDotProgram,
  tilesFor,
} from './attention-webgpu.js';

export const ATTENTION = 'T2mdAttention';
export const ATTENTION_GRAD = 'T2mdAttentionGrad';

/** Kernel attributes: the logit scale, and whether the keyMask input is real (else it is a placeholder nobody reads). */
export interface AttentionAttrs {
  scale: number;
  hasMask: boolean;
}

interface Dims {
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
  d: Dims,
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
  d: Dims,
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

type Arrays = Record<string, { shape: number[]; values: Float32Array } | undefined>;

function dimsOf(i: Arrays): Dims {
  const [B, H, Lq, Dh] = i.q!.shape as [number, number, number, number];
  return { B, H, Lq, Lk: i.k!.shape[2] as number, Dh };
}

const jsForward = typedArrayKernel<AttentionAttrs>(['q', 'k', 'v', 'keyMask'], (i, a) => {
  const d = dimsOf(i);
  const r = attentionForwardValues(i.q!.values, i.k!.values, i.v!.values, a.hasMask ? i.keyMask!.values : undefined, d, a.scale);
  return [
    { shape: i.q!.shape, values: r.out },
    { shape: [d.B, d.H, d.Lq], values: r.lse },
  ];
});

const jsGrad = typedArrayKernel<AttentionAttrs>(['q', 'k', 'v', 'keyMask', 'out', 'lse', 'dy'], (i, a) => {
  const d = dimsOf(i);
  const mask = a.hasMask ? i.keyMask!.values : undefined;
  const r = attentionBackwardValues(i.q!.values, i.k!.values, i.v!.values, mask, i.out!.values, i.lse!.values, i.dy!.values, d, a.scale);
  return [
    { shape: i.q!.shape, values: r.dq },
    { shape: i.k!.shape, values: r.dk },
    { shape: i.v!.shape, values: r.dv },
  ];
});

function maxWorkgroupStorage(backend: KernelBackend): number {
  const device = (backend as unknown as { device?: GPUDevice }).device;
  return device?.limits.maxComputeWorkgroupStorageSize ?? 16384;
}

const gpuForward: KernelFunc = ({ inputs, backend: be, attrs }) => {
  const backend = be as KernelBackend;
  const { q, k, v, keyMask } = inputs as Record<string, TensorInfo>;
  const { scale, hasMask } = attrs as unknown as AttentionAttrs;
  const [B, H, Lq, Dh] = q.shape as [number, number, number, number];
  const Lk = k.shape[2] as number;
  const t = tilesFor(Dh, maxWorkgroupStorage(backend)).fwd;
  const both = runProgram(
    backend,
    new AttentionForwardProgram(q.shape, hasMask, t),
    hasMask ? [q, k, v, keyMask] : [q, k, v],
    attentionUniforms(Lq, Lk, H, B * H, Lq, scale, t.rows),
  );
  const nO = B * H * Lq * Dh;
  const nL = B * H * Lq;
  const copy = (shape: number[], n: number, offset: number) => {
    const p = new CopyRangeProgram(shape, n, offset);
    const w = p.outputComponent;
    return runProgram(
      backend,
      p,
      [both],
      [
        { type: 'int32', data: [offset / w] },
        { type: 'int32', data: [n / w] },
      ],
    );
  };
  const out = copy([B, H, Lq, Dh], nO, 0);
  const lse = copy([B, H, Lq], nL, nO);
  disposeIntermediate(backend, both);
  return [out, lse];
};

const gpuGrad: KernelFunc = ({ inputs, backend: be, attrs }) => {
  const backend = be as KernelBackend;
  const { q, k, v, keyMask, out, lse, dy } = inputs as Record<string, TensorInfo>;
  const { scale, hasMask } = attrs as unknown as AttentionAttrs;
  const [B, H, Lq, Dh] = q.shape as [number, number, number, number];
  const Lk = k.shape[2] as number;
  const t = tilesFor(Dh, maxWorkgroupStorage(backend)).bwd;
  const D = runProgram(backend, new RowDotProgram([B, H, Lq], Dh), [dy, out], [{ type: 'int32', data: [B * H * Lq] }]);
  const m = hasMask ? [keyMask] : [];
  const dq = runProgram(
    backend,
    new AttentionGradQProgram(q.shape, hasMask, t),
    [q, k, v, dy, lse, D, ...m],
    attentionUniforms(Lq, Lk, H, B * H, Lq, scale, t.rows),
  );
  const kvUniforms = attentionUniforms(Lq, Lk, H, B * H, Lk, scale, t.rows);
  const dk = runProgram(backend, new AttentionGradKVProgram(k.shape, 'dk', hasMask, t), [q, k, v, dy, lse, D, ...m], kvUniforms);
  const dv = runProgram(backend, new AttentionGradKVProgram(v.shape, 'dv', hasMask, t), [q, k, dy, lse, ...m], kvUniforms);
  disposeIntermediate(backend, D);
  return [dq, dk, dv];
};

export const attentionKernels: KernelConfig[] = [
  { kernelName: ATTENTION, backendName: 'cpu', kernelFunc: jsForward as KernelFunc },
  { kernelName: ATTENTION, backendName: 'wasm', kernelFunc: jsForward as KernelFunc },
  { kernelName: ATTENTION, backendName: 'webgpu', kernelFunc: gpuForward },
  { kernelName: ATTENTION_GRAD, backendName: 'cpu', kernelFunc: jsGrad as KernelFunc },
  { kernelName: ATTENTION_GRAD, backendName: 'wasm', kernelFunc: jsGrad as KernelFunc },
  { kernelName: ATTENTION_GRAD, backendName: 'webgpu', kernelFunc: gpuGrad },
];
