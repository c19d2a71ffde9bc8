import { check, fmtShape, type Rng } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { headsAttention } from '../attention/index.js';
import type { MixerKind } from './layout.js';
import { Linear, type Params, prefixed } from './nn.js';

/**
 * A block's token mixer: maps the modulated tokens `[N, T, D]` to `[N, T, D]`. `grid` is the token grid
 * [rows, cols] (row-major tokens); Mamba mixers need it for their scan order, attention ignores it.
 * Without it a square grid is assumed (T must then be a square).
 */
export interface TokenMixer {
  readonly kind: MixerKind;
  apply(h: tf.Tensor, grid?: readonly [number, number]): tf.Tensor;
  /** Weights by name relative to the block (`attn.qkv.weight`, `mixer.in_proj.weight`, ...). */
  weights(): Params;
  dispose(): void;
}

/**
 * Multi-head self-attention (PixArt's `attn`: `qkv` `[3D, D]` producing q, k, v in that order, head h
 * taking columns h·Dh..(h+1)·Dh of each; `proj` `[D, D]`), scale 1/√Dh, through the memory-efficient
 * attention kernel (`headsAttention`). Xavier-uniform init (DiT).
 */
export class SelfAttention implements TokenMixer {
  readonly kind = 'SA' as const;
  readonly qkv: Linear;
  readonly proj: Linear;

  constructor(
    readonly hiddenSize: number,
    readonly numHeads: number,
    rng: Rng,
  ) {
    this.qkv = new Linear(hiddenSize, 3 * hiddenSize, 'xavier', rng);
    this.proj = new Linear(hiddenSize, hiddenSize, 'xavier', rng);
  }

  /**
   * @param h `[N, T, D]`
   * @returns `[N, T, D]`
   */
  apply(h: tf.Tensor): tf.Tensor {
    check(
      h.rank === 3 && h.shape[2] === this.hiddenSize,
      () => `h must have shape [N, T, ${this.hiddenSize}] (tokens × hiddenSize), got ${fmtShape(h.shape)}.`,
    );
    return tf.tidy(() => {
      const [N, T, D] = h.shape;
      const H = this.numHeads;
      // One qkv projection; the attention reads q, k and v (and writes its output) in these column
      // layouts, so no head split, merge or weight slice is made (each a copy, forward and backward).
      const qkv = this.qkv.apply(tf.reshape(h, [N * T, D])); // [N·T, 3D]
      const o = headsAttention(qkv, qkv, { batch: N, heads: H, headDim: D / H, qOffset: 0, kOffset: D, vOffset: 2 * D }); // [N·T, D]
      return tf.reshape(this.proj.apply(o), [N, T, D]); // [N, T, D]
    });
  }

  weights(): Params {
    return { ...prefixed('attn.qkv.', this.qkv.weights()), ...prefixed('attn.proj.', this.proj.weights()) };
  }

  dispose(): void {
    tf.dispose([this.qkv.weight, this.qkv.bias, this.proj.weight, this.proj.bias]);
  }
}

/**
 * Multi-head cross-attention from image tokens to caption tokens (PixArt's `cross_attn`: `q_linear`
 * `[D, D]`, `kv_linear` `[2D, D]` with k first, `proj` `[D, D]`), with a key mask over caption tokens.
 * `proj` starts at zero (PixArt's init), so a fresh block adds nothing here.
 */
export class CrossAttention {
  readonly qLinear: Linear;
  readonly kvLinear: Linear;
  readonly proj: Linear;

  constructor(
    readonly hiddenSize: number,
    readonly numHeads: number,
    rng: Rng,
  ) {
    this.qLinear = new Linear(hiddenSize, hiddenSize, 'xavier', rng);
    this.kvLinear = new Linear(hiddenSize, 2 * hiddenSize, 'xavier', rng);
    this.proj = new Linear(hiddenSize, hiddenSize, 'zeros', rng);
  }

  /**
   * @param x `[N, T, D]` image tokens
   * @param y `[N, Lc, D]` projected caption tokens
   * @param yMask `[N, Lc]` bool, false = padding (ignored)
   * @returns `[N, T, D]`
   */
  apply(x: tf.Tensor, y: tf.Tensor, yMask?: tf.Tensor): tf.Tensor {
    const [N, T, D] = x.shape;
    const Lc = y.shape[1]!;
    const H = this.numHeads;
    const q = this.qLinear.apply(tf.reshape(x, [N * T, D])); // [N·T, D]
    const kv = this.kvLinear.apply(tf.reshape(y, [N * Lc, D])); // [N·Lc, 2D]: k then v, heads in columns
    const o = headsAttention(q, kv, {
      batch: N,
      heads: H,
      headDim: D / H,
      kOffset: 0,
      vOffset: D,
      ...(yMask ? { keyMask: yMask } : {}),
    }); // [N·T, D]
    return tf.reshape(this.proj.apply(o), [N, T, D]); // [N, T, D]
  }

  weights(): Params {
    return {
      ...prefixed('q_linear.', this.qLinear.weights()),
      ...prefixed('kv_linear.', this.kvLinear.weights()),
      ...prefixed('proj.', this.proj.weights()),
    };
  }
}
