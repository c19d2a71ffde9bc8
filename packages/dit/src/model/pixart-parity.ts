/**
 * Holds `createDiT` to the float64 PixArt reference (`pixart-f64.ts`): random PixArt weights loaded by
 * state-dict name, a batch with timesteps across 0–999, three caption cases, and the relative error of
 * the whole output on the current tfjs backend. Also swaps one reference op at a time for the backend's
 * kernel, which measures that op's share of the whole-model error. Test and bench support (the
 * accuracy test and `bench/pixart-parity.ts`), not exported from the package.
 */
import { geluTanh, linear } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { attention } from '../attention/index.js';
import type { DiTConfig } from './config.js';
import { createDiT, type DiT } from './dit.js';
import { silu } from './embedders.js';
import { adaNorm } from './ops/ada-norm.js';
import { timestepFeatures } from './ops/timestep-features.js';
import { F64_OPS, type Param, type PixArtInputs, type PixArtOps, type PixArtSizes, pixartForward, pixartShapes } from './pixart-f64.js';

/** The model of the check: 2 blocks 64 wide, 4 heads, learned sigma, a 4-channel latent at patch 2. */
export const PARITY_SIZES: PixArtSizes = {
  inChannels: 4,
  patchSize: 2,
  hiddenSize: 64,
  depth: 2,
  numHeads: 4,
  mlpRatio: 4,
  captionChannels: 32,
  captionLength: 8,
  learnSigma: true,
};

/** Timesteps of the batch: both ends of the schedule, the two the first report named, a fraction. */
export const PARITY_TIMESTEPS = [0, 1, 17, 128, 333.25, 611, 867, 999];

/** Image size: a non-square 8×6 token grid, so rows and columns cannot be swapped unnoticed. */
const [IMG_H, IMG_W] = [16, 12];

/** The caption cases: padded captions (a key mask), no mask, and the null caption for every other row. */
export const PARITY_CASES = ['padded caption', 'no mask', 'null caption'] as const;
export type ParityCase = (typeof PARITY_CASES)[number];

/** `n` standard normals from a seeded xorshift + Box–Muller, rounded to float32 (what both models hold). */
export function normals(n: number, seed: number, std = 1): Float64Array {
  let s = seed >>> 0 || 0x2545f491;
  const uniform = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(std * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
  return out;
}

/**
 * Gains that push the model to the ranges a trained one reaches: query and key projections (self and
 * cross) scaled so attention logits reach tens, the MLP and caption fc1 so GELU sees inputs beyond ±10.
 */
const GAINS: [RegExp, number, 'all' | 'qk'][] = [
  [/attn\.qkv\.weight$/, 2, 'qk'],
  [/cross_attn\.q_linear\.weight$/, 1.5, 'all'],
  [/cross_attn\.kv_linear\.weight$/, 1.5, 'qk'],
  [/fc1\.weight$/, 3, 'all'],
];

/**
 * Random weights: linear and conv weights N(0, 1/fanIn), so activations stay O(1), times `GAINS`;
 * biases N(0, 0.02²); scale_shift_tables N(0, 1/D) and the null caption N(0, 1/Dc), as PixArt
 * initialises them. Every path is live (nothing zero).
 */
export function randomPixArtWeights(c: PixArtSizes, seed: number): Record<string, Param> {
  const out: Record<string, Param> = {};
  const D = c.hiddenSize;
  for (const [i, [name, shape]] of Object.entries(pixartShapes(c)).entries()) {
    const size = shape.reduce((a, b) => a * b, 1);
    let std = 0.02;
    if (name.endsWith('scale_shift_table')) std = 1 / Math.sqrt(D);
    else if (name.endsWith('y_embedding')) std = 1 / Math.sqrt(c.captionChannels);
    else if (name.endsWith('.weight')) std = 1 / Math.sqrt(size / shape[0]!);
    const data = normals(size, seed * 7919 + i, std);
    for (const [re, gain, rows] of GAINS) {
      if (!re.test(name)) continue;
      // 'qk': only the query and key rows of a fused projection (q, k, v or k, v order), so values stay O(1)
      const n = rows === 'all' ? size : (name.includes('kv_linear') ? D : 2 * D) * (size / shape[0]!);
      for (let j = 0; j < n; j++) data[j] = Math.fround(data[j]! * gain);
    }
    out[name] = { shape, data };
  }
  return out;
}

/** The largest |input| the reference's GELUs and attention logits saw, and the largest timestep. */
export interface OpRanges {
  gelu: number;
  logit: number;
  t: number;
}

/** The float64 ops, recording the ranges they see into `ranges`. */
export function rangeOps(ranges: OpRanges): PixArtOps {
  const F = F64_OPS;
  const maxAbs = (a: Float64Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  return {
    ...F,
    timestepFeatures: (t, dim) => {
      ranges.t = Math.max(ranges.t, maxAbs(t));
      return F.timestepFeatures(t, dim);
    },
    gelu: (x) => {
      ranges.gelu = Math.max(ranges.gelu, maxAbs(x));
      return F.gelu(x);
    },
    attention: (q, k, v, dims, mask) => {
      const { N, H, Lq, Lk, Dh } = dims;
      for (let b = 0; b < N * H; b++)
        for (let i = 0; i < Lq; i++)
          for (let j = 0; j < Lk; j++) {
            if (mask != null && mask[Math.floor(b / H) * Lk + j] === 0) continue;
            let s = 0;
            for (let d = 0; d < Dh; d++) s += q[(b * Lq + i) * Dh + d]! * k[(b * Lk + j) * Dh + d]!;
            ranges.logit = Math.max(ranges.logit, Math.abs(s) / Math.sqrt(Dh));
          }
      return F.attention(q, k, v, dims, mask);
    },
  };
}

/** The reference's inputs of one case (N = the timesteps given). */
export function parityInputs(c: PixArtSizes, kase: ParityCase, seed: number, t = PARITY_TIMESTEPS): PixArtInputs {
  const N = t.length;
  const Lc = c.captionLength;
  const inp: PixArtInputs = {
    x: normals(N * c.inChannels * IMG_H * IMG_W, seed + 1),
    H: IMG_H,
    W: IMG_W,
    t: Float64Array.from(t, Math.fround),
    y: normals(N * Lc * c.captionChannels, seed + 2),
  };
  if (kase !== 'no mask') {
    // row n keeps its first Lc − (n mod Lc/2) tokens, so masks of several lengths occur
    inp.yMask = new Uint8Array(N * Lc);
    for (let n = 0; n < N; n++) inp.yMask.fill(1, n * Lc, n * Lc + Lc - (n % (Lc / 2)));
  }
  if (kase === 'null caption') inp.dropCaption = Array.from({ length: N }, (_, n) => n % 2 === 1);
  return inp;
}

/** The DiT config with these sizes. */
export function parityConfig(c: PixArtSizes): DiTConfig {
  return { ...c, layout: `SA*${c.depth}`, posEmbed: 'sincos' };
}

/** ‖a − b‖ / ‖b‖, with per-sample errors over the N equal slices. */
export function relErrors(a: ArrayLike<number>, b: ArrayLike<number>, N: number): { all: number; perSample: number[] } {
  const per = a.length / N;
  const num = new Float64Array(N);
  const den = new Float64Array(N);
  for (let i = 0; i < a.length; i++) {
    const n = Math.floor(i / per);
    num[n] += (a[i]! - b[i]!) ** 2;
    den[n] += b[i]! ** 2;
  }
  const sum = (v: Float64Array) => v.reduce((s, x) => s + x, 0);
  return { all: Math.sqrt(sum(num) / sum(den)), perSample: Array.from(num, (x, n) => Math.sqrt(x / den[n]!)) };
}

/** `createDiT` holding the reference's weights, loaded by PixArt state-dict name (names and shapes must match exactly). */
export function parityModel(c: PixArtSizes, w: Record<string, Param>): DiT {
  const model = createDiT(parityConfig(c));
  const ours = model.weights();
  const missing = Object.keys(ours).filter((k) => w[k] == null);
  const extra = Object.keys(w).filter((k) => ours[k] == null);
  if (missing.length + extra.length > 0) {
    model.dispose();
    throw new Error(`state-dict names differ: missing ${missing}, unexpected ${extra}`);
  }
  for (const [k, v] of Object.entries(ours)) {
    if (v.shape.join() !== w[k]!.shape.join()) {
      model.dispose();
      throw new Error(`${k}: shape ${v.shape} here, ${w[k]!.shape} in the reference`);
    }
    tf.tidy(() => v.assign(tf.tensor(Float32Array.from(w[k]!.data), v.shape, 'float32')));
  }
  return model;
}

/** The model's forward on the current backend; `[N, Cout, H, W]` as float32. */
export async function ditForward(model: DiT, inp: PixArtInputs): Promise<Float32Array> {
  const c = model.config;
  const N = inp.t.length;
  const Lc = inp.y.length / (N * c.captionChannels);
  const out = tf.tidy(() => {
    const opts: { yMask?: tf.Tensor; dropCaption?: tf.Tensor } = {};
    if (inp.yMask) opts.yMask = tf.tensor2d(inp.yMask, [N, Lc], 'bool');
    if (inp.dropCaption) opts.dropCaption = tf.tensor1d(inp.dropCaption.map(Number), 'bool');
    const x = tf.tensor4d(Float32Array.from(inp.x), [N, c.inChannels, inp.H, inp.W]);
    const y = tf.tensor3d(Float32Array.from(inp.y), [N, Lc, c.captionChannels]);
    return model.forward(x, tf.tensor1d(Float32Array.from(inp.t)), y, opts);
  });
  try {
    return (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
}

/** The whole-model error of `createDiT` on the current backend against the float64 reference, per case. */
export async function parityErrors(seed: number, c = PARITY_SIZES): Promise<Record<ParityCase, { all: number; perSample: number[] }>> {
  const w = randomPixArtWeights(c, seed);
  const model = parityModel(c, w);
  const out = {} as Record<ParityCase, { all: number; perSample: number[] }>;
  try {
    for (const kase of PARITY_CASES) {
      const inp = parityInputs(c, kase, seed);
      const [got, want] = await Promise.all([ditForward(model, inp), pixartForward(c, w, inp)]);
      out[kase] = relErrors(got, want, inp.t.length);
    }
  } finally {
    model.dispose();
  }
  return out;
}

/** Runs `f` in a tidy and reads its result back as float64. */
async function readBack(f: () => tf.Tensor): Promise<Float64Array> {
  const t = tf.tidy(f);
  try {
    return Float64Array.from(await t.data());
  } finally {
    t.dispose();
  }
}

const f32 = (a: Float64Array, shape: number[]) => tf.tensor(Float32Array.from(a), shape, 'float32');

/** The reference ops run by the current backend's kernels (what `createDiT` calls), on float32 copies of their inputs. */
export function backendOps(): PixArtOps {
  return {
    timestepFeatures: (t, dim) => readBack(() => timestepFeatures(f32(t, [t.length]), dim)),
    linear: (x, w, b) => {
      const inF = w.shape[1]!;
      return readBack(() => linear(f32(x, [x.length / inF, inF]), f32(w.data, w.shape), f32(b.data, b.shape)));
    },
    silu: (x) => readBack(() => silu(f32(x, [x.length]))),
    gelu: (x) => readBack(() => geluTanh(f32(x, [x.length]))),
    modulatedNorm: (x, shift, scale, N, D) =>
      readBack(() => adaNorm(f32(x, [N, x.length / (N * D), D]), tf.stack([f32(shift, [N, D]), f32(scale, [N, D])], 1), 0, 1)),
    attention: (q, k, v, { N, H, Lq, Lk, Dh }, keyMask) =>
      readBack(() =>
        attention(
          f32(q, [N, H, Lq, Dh]),
          f32(k, [N, H, Lk, Dh]),
          f32(v, [N, H, Lk, Dh]),
          keyMask ? { keyMask: tf.tensor2d(keyMask, [N, Lk], 'bool') } : {},
        ),
      ),
  };
}

const round = (a: Float64Array) => a.map(Math.fround);

/** The float64 ops with inputs and output rounded to float32: what an exactly rounded float32 kernel adds. */
export function roundedOps(): PixArtOps {
  const F = F64_OPS;
  const p = (w: Param): Param => ({ shape: w.shape, data: round(w.data) });
  return {
    timestepFeatures: async (t, dim) => round(await F.timestepFeatures(round(t), dim)),
    linear: async (x, w, b) => round(await F.linear(round(x), p(w), p(b))),
    silu: async (x) => round(await F.silu(round(x))),
    gelu: async (x) => round(await F.gelu(round(x))),
    modulatedNorm: async (x, sh, sc, N, D) => round(await F.modulatedNorm(round(x), round(sh), round(sc), N, D)),
    attention: async (q, k, v, dims, mask) => round(await F.attention(round(q), round(k), round(v), dims, mask)),
  };
}

/** The ops `PixArtOps` names, in forward order. */
export const PIXART_OPS = ['timestepFeatures', 'linear', 'silu', 'gelu', 'modulatedNorm', 'attention'] as const;

/**
 * The whole-model error (against the all-float64 reference) when only the ops in `override` are
 * replaced: that op's share of the error.
 */
export async function shareOf(
  seed: number,
  override: Partial<PixArtOps>,
  kase: ParityCase = 'padded caption',
  c = PARITY_SIZES,
): Promise<number> {
  const w = randomPixArtWeights(c, seed);
  const inp = parityInputs(c, kase, seed);
  const [got, want] = await Promise.all([pixartForward(c, w, inp, { ...F64_OPS, ...override }), pixartForward(c, w, inp)]);
  return relErrors(got, want, inp.t.length).all;
}

/**
 * Each op's share of the whole-model error: the reference with that one op run by the current
 * backend's kernel (`backend`), and by an exactly rounded float32 version (`rounded`, the floor a
 * float32 kernel can reach).
 */
export async function opShares(seed: number, kase: ParityCase = 'padded caption', c = PARITY_SIZES) {
  const [gpu, rounded] = [backendOps(), roundedOps()];
  const out = {} as Record<(typeof PIXART_OPS)[number], { backend: number; rounded: number }>;
  for (const op of PIXART_OPS) {
    out[op] = { backend: await shareOf(seed, { [op]: gpu[op] }, kase, c), rounded: await shareOf(seed, { [op]: rounded[op] }, kase, c) };
  }
  return out;
}
