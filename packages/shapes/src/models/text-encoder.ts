/**
 * A small caption encoder for the shapes world: token embedding + learned positions, then a few pre-LN
 * transformer layers (masked self-attention, GELU MLP) and a final LayerNorm. It stands where PixArt
 * has frozen T5: the teacher stage trains it jointly with the teacher DiT, every later stage keeps it
 * frozen (the student sees exactly the teacher's caption features).
 *
 * Shapes: B batch, L caption tokens (≤ maxLength), D = dim (the DiT's `captionChannels`).
 * Weights are a state dict under `text_encoder.` (PyTorch layouts: Linear `[out, in]`).
 */
import { assertInt, check, fmtShape, geluTanh, linear as linear2d, Rng } from '@t2md/core';
import { affineLayerNorm } from '@t2md/dit';
import * as tf from '@tensorflow/tfjs-core';

export interface CaptionEncoderConfig {
  /** Vocabulary size V (token ids are 0..V-1). */
  readonly vocabSize: number;
  /** Longest caption in tokens (size of the learned position table). */
  readonly maxLength: number;
  /** Output width D (the DiT's captionChannels). */
  readonly dim: number;
  /** Transformer layers after the embeddings (default 1; 0 = embeddings + final LayerNorm only). */
  readonly layers?: number;
  /** Attention heads (default 2); dim must be divisible by it. */
  readonly heads?: number;
  /** MLP hidden = dim * mlpRatio (default 2). */
  readonly mlpRatio?: number;
  /** Seed of the initial weights (default 0). */
  readonly seed?: number;
}

export type ResolvedCaptionEncoderConfig = Required<CaptionEncoderConfig>;

/** The state-dict prefix of every caption-encoder weight. */
export const CAPTION_ENCODER_PREFIX = 'text_encoder.';

/** Fills in defaults and checks the sizes; throws an InputError naming the field. */
export function resolveCaptionEncoderConfig(config: CaptionEncoderConfig): ResolvedCaptionEncoderConfig {
  check(config != null && typeof config === 'object', 'config must be an object such as {vocabSize: 40, maxLength: 16, dim: 32}.');
  const c: ResolvedCaptionEncoderConfig = {
    vocabSize: config.vocabSize,
    maxLength: config.maxLength,
    dim: config.dim,
    layers: config.layers ?? 1,
    heads: config.heads ?? 2,
    mlpRatio: config.mlpRatio ?? 2,
    seed: config.seed ?? 0,
  };
  assertInt('config.vocabSize', c.vocabSize, 1);
  assertInt('config.maxLength', c.maxLength, 1);
  assertInt('config.dim', c.dim, 1);
  assertInt('config.layers', c.layers, 0, 64);
  assertInt('config.heads', c.heads, 1);
  assertInt('config.seed', c.seed, 0, 2 ** 32 - 1);
  check(c.dim % c.heads === 0, () => `config.dim (${c.dim}) must be divisible by config.heads (${c.heads}).`);
  check(
    typeof c.mlpRatio === 'number' && c.mlpRatio > 0 && Number.isInteger(c.dim * c.mlpRatio),
    () => `config.mlpRatio must be positive with dim * mlpRatio an integer, got ${String(c.mlpRatio)}.`,
  );
  return Object.freeze(c);
}

/** Every weight's name (with the `text_encoder.` prefix) and shape. */
export function captionEncoderWeightShapes(config: CaptionEncoderConfig): Record<string, number[]> {
  const c = resolveCaptionEncoderConfig(config);
  const D = c.dim;
  const Hd = D * c.mlpRatio;
  const p = CAPTION_ENCODER_PREFIX;
  const out: Record<string, number[]> = {
    [`${p}embed.weight`]: [c.vocabSize, D],
    [`${p}pos_embed`]: [c.maxLength, D],
  };
  for (let i = 0; i < c.layers; i++) {
    const l = `${p}layers.${i}.`;
    Object.assign(out, {
      [`${l}norm1.weight`]: [D],
      [`${l}norm1.bias`]: [D],
      [`${l}attn.qkv.weight`]: [3 * D, D],
      [`${l}attn.qkv.bias`]: [3 * D],
      [`${l}attn.proj.weight`]: [D, D],
      [`${l}attn.proj.bias`]: [D],
      [`${l}norm2.weight`]: [D],
      [`${l}norm2.bias`]: [D],
      [`${l}mlp.fc1.weight`]: [Hd, D],
      [`${l}mlp.fc1.bias`]: [Hd],
      [`${l}mlp.fc2.weight`]: [D, Hd],
      [`${l}mlp.fc2.bias`]: [D],
    });
  }
  out[`${p}norm.weight`] = [D];
  out[`${p}norm.bias`] = [D];
  return out;
}

/** Initial values: embeddings N(0, 0.02²) (GPT-2), Linear weights xavier-uniform, biases 0, norms 1. */
function initialValues(name: string, shape: number[], rng: Rng): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (name.endsWith('embed.weight') || name.endsWith('pos_embed')) {
    const v = rng.normals(n);
    for (let i = 0; i < n; i++) v[i] *= 0.02;
    return v;
  }
  if (/norm\d?\.weight$/.test(name)) return new Float32Array(n).fill(1);
  if (name.endsWith('.bias')) return new Float32Array(n);
  const bound = Math.sqrt(6 / (shape[0] + shape[1]));
  return rng.uniforms(n, -bound, bound);
}

/**
 * The caption encoder. `encode` is differentiable in every weight (the teacher stage trains it);
 * later stages simply leave its variables out of the optimiser.
 */
export class CaptionEncoder {
  readonly config: ResolvedCaptionEncoderConfig;
  private readonly vars: Record<string, tf.Variable>;
  private disposed = false;

  /** New weights from `config.seed` (or `rng` when given), or the given tensors (copied, checked by name and shape). */
  constructor(config: CaptionEncoderConfig, init?: { rng?: Rng; tensors?: Record<string, tf.Tensor> }) {
    this.config = resolveCaptionEncoderConfig(config);
    const shapes = captionEncoderWeightShapes(this.config);
    const tensors = init?.tensors;
    if (tensors != null) {
      for (const [name, shape] of Object.entries(shapes)) {
        const t = tensors[name];
        check(
          t != null,
          () => `the caption encoder weight '${name}' is missing; the file must hold every ${CAPTION_ENCODER_PREFIX}* weight.`,
        );
        check(
          t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]),
          () => `the caption encoder weight '${name}' has shape ${fmtShape(t.shape)} but the config needs ${fmtShape(shape)}.`,
        );
      }
    }
    const rng = init?.rng ?? new Rng(this.config.seed);
    this.vars = {};
    for (const [name, shape] of Object.entries(shapes)) {
      this.vars[name] = tf.tidy(() => {
        const t = tensors?.[name];
        const value = t != null ? tf.cast(t, 'float32') : tf.tensor(initialValues(name, shape, rng), shape, 'float32');
        return tf.variable(value, true);
      });
    }
  }

  /** The weights by state-dict name (`text_encoder.*`); the variables themselves, not copies. */
  weights(): Record<string, tf.Variable> {
    check(!this.disposed, 'this CaptionEncoder was disposed; create a new one.');
    return { ...this.vars };
  }

  /**
   * @param tokens int32 `[B, L]`, ids in [0, vocabSize) (the tokenizer guarantees it; not re-read here,
   *   which would stall a GPU)
   * @param mask `[B, L]` (bool, or numbers with 1 = real token, 0 = padding); padding keys are ignored
   *   by the attention. A caption with no real token attends uniformly (no NaN).
   * @returns float32 `[B, L, D]`; padding rows are computed too (the DiT masks them in cross-attention)
   */
  encode(tokens: tf.Tensor, mask: tf.Tensor): tf.Tensor {
    check(!this.disposed, 'this CaptionEncoder was disposed; create a new one.');
    check(tokens != null && Array.isArray(tokens.shape), 'tokens must be an int32 tensor [B, L].');
    check(tokens.dtype === 'int32', () => `tokens must be int32 token ids, got ${tokens.dtype}.`);
    check(tokens.rank === 2, () => `tokens must have shape [B, L], got ${fmtShape(tokens.shape)}.`);
    const [B, L] = tokens.shape;
    check(
      L >= 1 && L <= this.config.maxLength,
      () =>
        `tokens has L = ${L} but the caption encoder holds ${this.config.maxLength} positions; truncate or pad captions to at most ${this.config.maxLength} tokens.`,
    );
    check(
      mask != null && Array.isArray(mask.shape) && mask.rank === 2 && mask.shape[0] === B && mask.shape[1] === L,
      () => `mask must have shape [B, L] = [${B}, ${L}] like tokens, got ${mask == null ? String(mask) : fmtShape(mask.shape)}.`,
    );
    const c = this.config;
    const w = this.vars;
    const p = CAPTION_ENCODER_PREFIX;
    return tf.tidy(() => {
      const D = c.dim;
      // Embedding lookup as one-hot · table: its gradient is a matmul on every backend (the gradient of
      // tf.gather needs UnsortedSegmentSum, which the wasm backend lacks), and the vocabulary is small.
      const onehot = tf.oneHot(tf.reshape(tokens, [-1]), c.vocabSize); // [B*L, V]
      let x = tf.reshape(tf.matMul(tf.cast(onehot, 'float32'), w[`${p}embed.weight`]), [B, L, D]); // [B, L, D]
      x = tf.add(x, tf.slice(w[`${p}pos_embed`], [0, 0], [L, D]));
      // Additive key bias: 0 for real tokens, -1e9 for padding ([B, 1, 1, L], broadcast over heads and queries).
      const keep = tf.cast(mask, 'float32');
      const bias = tf.reshape(tf.mul(tf.sub(1, keep), -1e9), [B, 1, 1, L]);
      for (let i = 0; i < c.layers; i++) {
        const l = `${p}layers.${i}.`;
        x = tf.add(x, this.attention(affineLayerNorm(x, w[`${l}norm1.weight`], w[`${l}norm1.bias`]), bias, l));
        const h = linear(affineLayerNorm(x, w[`${l}norm2.weight`], w[`${l}norm2.bias`]), w[`${l}mlp.fc1.weight`], w[`${l}mlp.fc1.bias`]);
        x = tf.add(x, linear(geluTanh(h), w[`${l}mlp.fc2.weight`], w[`${l}mlp.fc2.bias`]));
      }
      return affineLayerNorm(x, w[`${p}norm.weight`], w[`${p}norm.bias`]); // [B, L, D]
    });
  }

  /** Frees every weight. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of Object.values(this.vars)) v.dispose();
  }

  /** Multi-head self-attention over `x` `[B, L, D]` with the additive key bias `[B, 1, 1, L]`. */
  private attention(x: tf.Tensor, bias: tf.Tensor, l: string): tf.Tensor {
    const [B, L, D] = x.shape;
    const H = this.config.heads;
    const Dh = D / H;
    const qkv = linear(x, this.vars[`${l}attn.qkv.weight`], this.vars[`${l}attn.qkv.bias`]); // [B, L, 3D]
    const heads = tf.transpose(tf.reshape(qkv, [B, L, 3, H, Dh]), [2, 0, 3, 1, 4]); // [3, B, H, L, Dh]
    const [q, k, v] = tf.unstack(heads, 0); // each [B, H, L, Dh]
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(Dh)), bias); // [B, H, L, L]
    const o = tf.matMul(tf.softmax(scores, -1), v); // [B, H, L, Dh]
    const merged = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [B, L, D]); // [B, L, D]
    return linear(merged, this.vars[`${l}attn.proj.weight`], this.vars[`${l}attn.proj.bias`]);
  }
}

/**
 * Creates a caption encoder: fresh weights from `config.seed`, or a copy of `tensors[text_encoder.*]`
 * when given (the signature @t2md/distill's trainer expects of a text-encoder factory).
 */
export function createCaptionEncoder(config: CaptionEncoderConfig, tensors?: Record<string, tf.Tensor>): CaptionEncoder {
  return new CaptionEncoder(config, tensors != null ? { tensors } : undefined);
}

/**
 * A caption encoder holding `tensors[text_encoder.*]` (copied; the caller still owns `tensors`), e.g.
 * from `loadSafetensors(bytes).tensors`. Missing or mis-shaped weights throw an InputError.
 */
export function captionEncoderFromTensors(config: CaptionEncoderConfig, tensors: Record<string, tf.Tensor>): CaptionEncoder {
  return new CaptionEncoder(config, { tensors });
}

/** x `[..., in]` · Wᵀ + b with W `[out, in]` (PyTorch Linear). */
function linear(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const [out, inF] = weight.shape;
  const y = linear2d(tf.reshape(x, [-1, inF]), weight, bias); // [N, out]
  return tf.reshape(y, [...x.shape.slice(0, -1), out]);
}
