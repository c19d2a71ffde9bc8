import { check, fmtShape, type Rng } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { attention } from '../attention/index.js';
import type { MixerKind } from './layout.js';
import { Linear, linear2d, type Params, prefixed } from './nn.js';

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

/** `[N·T, H·Dh]` → `[N, H, T, Dh]`. */
function toHeads(x: tf.Tensor, N: number, T: number, H: number): tf.Tensor {
  const Dh = x.shape[1]! / H;
  return tf.transpose(tf.reshape(x, [N, T, H, Dh]), [0, 2, 1, 3]); // [N, H, T, Dh]
}

/** `[N, H, T, Dh]` → `[N·T, H·Dh]`. */
function fromHeads(o: tf.Tensor): tf.Tensor {
  const [N, H, T, Dh] = o.shape;
  return tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [N * T, H * Dh]); // [N·T, D]
}

/**
 * Multi-head self-attention (PixArt's `attn`: `qkv` `[3D, D]` producing q, k, v in that order, head h
 * taking columns h·Dh..(h+1)·Dh of each; `proj` `[D, D]`), scale 1/√Dh, through the memory-efficient
 * `attention` kernel. Xavier-uniform init (DiT).
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
      const x = tf.reshape(h, [N * T, D]);
      // Three matmuls on row slices of the (small) qkv weight, rather than one matmul and three slices
      // of the N·T×3D activation: at 32,400 tokens that saves copying ~110M floats per block.
      const W = this.qkv.weight;
      const b = this.qkv.bias;
      const part = (i: number) => toHeads(linear2d(x, tf.slice(W, [i * D, 0], [D, D]), tf.slice(b, [i * D], [D])), N, T, H);
      const o = attention(part(0), part(1), part(2)); // [N, H, T, Dh]
      return tf.reshape(this.proj.apply(fromHeads(o)), [N, T, D]); // [N, T, D]
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
    const q = toHeads(this.qLinear.apply(tf.reshape(x, [N * T, D])), N, T, H); // [N, H, T, Dh]
    const kv = tf.reshape(this.kvLinear.apply(tf.reshape(y, [N * Lc, D])), [N, Lc, 2, H, D / H]); // [N, Lc, 2, H, Dh]
    const [k, v] = tf.unstack(tf.transpose(kv, [2, 0, 3, 1, 4])); // [N, H, Lc, Dh] each
    const o = attention(q, k, v, yMask ? { keyMask: yMask } : {}); // [N, H, T, Dh]
    return tf.reshape(this.proj.apply(fromHeads(o)), [N, T, D]); // [N, T, D]
  }

  weights(): Params {
    return {
      ...prefixed('q_linear.', this.qLinear.weights()),
      ...prefixed('kv_linear.', this.kvLinear.weights()),
      ...prefixed('proj.', this.proj.weights()),
    };
  }
}
