import { linear, type Rng } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';

/** Trainable weights by (PyTorch state-dict) name. */
export type Params = Record<string, tf.Variable>;

/** `{a: v}` → `{'prefix.a': v}`. */
export function prefixed(prefix: string, params: Params): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(params)) out[`${prefix}${k}`] = v;
  return out;
}

/**
 * A trainable float32 variable holding `values`. Unnamed on purpose: tfjs variable names are global,
 * and a teacher and a student hold the same state-dict names.
 */
export function makeVariable(values: Float32Array, shape: number[], trainable = true): tf.Variable {
  return tf.tidy(() => tf.variable(tf.tensor(values, shape, 'float32'), trainable));
}

/** How a weight starts: DiT's xavier-uniform, zeros, or N(0, std²) (PixArt's embedders). */
export type WeightInit = 'xavier' | 'zeros' | { std: number };

/** Initial values of an `[fanOut, fanIn, ...]` weight (xavier treats trailing dims as part of fanIn). */
export function initValues(init: WeightInit, fanOut: number, fanIn: number, rng: Rng): Float32Array {
  const n = fanOut * fanIn;
  if (init === 'zeros') return new Float32Array(n);
  if (init === 'xavier') {
    const bound = Math.sqrt(6 / (fanIn + fanOut));
    return rng.uniforms(n, -bound, bound);
  }
  const v = rng.normals(n);
  for (let i = 0; i < n; i++) v[i] *= init.std;
  return v;
}

/**
 * nn.Linear with PyTorch's layout: `weight` `[out, in]`, `bias` `[out]`, y = x Wᵀ + b. Biases start at 0
 * (DiT's `_basic_init`).
 */
export class Linear {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    init: WeightInit,
    rng: Rng,
  ) {
    this.weight = makeVariable(initValues(init, outFeatures, inFeatures, rng), [outFeatures, inFeatures]);
    this.bias = makeVariable(new Float32Array(outFeatures), [outFeatures]);
  }

  /**
   * @param x `[..., in]`; the matmul runs on the `[rows, in]` 2-D view
   * @returns `[..., out]`
   */
  apply(x: tf.Tensor): tf.Tensor {
    const rows = x.size / this.inFeatures;
    const y = linear2d(tf.reshape(x, [rows, this.inFeatures]), this.weight, this.bias); // [rows, out]
    return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), this.outFeatures]);
  }

  weights(): Params {
    return { weight: this.weight, bias: this.bias };
  }
}

/** x `[N, in]`, w `[out, in]`, b `[out]` → `[N, out]` (core's `linear`, which works around a wasm bug). */
export const linear2d = linear;

/** LayerNorm over the last axis without affine parameters (PixArt's `elementwise_affine=False, eps=1e-6`). */
export function layerNorm(x: tf.Tensor, eps = 1e-6): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), -1, true);
  return tf.mul(xc, tf.rsqrt(tf.add(variance, eps)));
}

/** DiT's `modulate`: x·(1 + scale) + shift, with shift and scale `[N, 1, D]` broadcast over tokens. */
export function modulate(x: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor): tf.Tensor {
  return tf.add(tf.mul(x, tf.add(scale, 1)), shift);
}
