import { check, fmtShape, geluTanh, type Rng } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { initValues, Linear, linear2d, makeVariable, type Params, prefixed } from './nn.js';
import { timestepFeatures } from './ops/timestep-features.js';

/**
 * PixArt's `x_embedder` (a p×p conv with stride p): the same as a linear layer on flattened patches,
 * which is how it runs here (one transpose + one matmul). Weight `proj.weight` `[D, C, p, p]` and
 * `proj.bias` `[D]` in PyTorch's conv layout; xavier-uniform on the `[D, C·p·p]` view (DiT).
 */
export class PatchEmbed {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(
    readonly inChannels: number,
    readonly patchSize: number,
    readonly hiddenSize: number,
    rng: Rng,
  ) {
    const fanIn = inChannels * patchSize * patchSize;
    this.weight = makeVariable(initValues('xavier', hiddenSize, fanIn, rng), [hiddenSize, inChannels, patchSize, patchSize]);
    this.bias = makeVariable(new Float32Array(hiddenSize), [hiddenSize]);
  }

  /**
   * @param x `[N, C, H, W]`, H and W multiples of p
   * @returns `[N, T, D]` with T = (H/p)·(W/p) tokens in row-major (width-first) order
   */
  apply(x: tf.Tensor): tf.Tensor {
    const [N, C, H, W] = x.shape;
    const p = this.patchSize;
    const [gh, gw] = [H / p, W / p];
    const patches = tf.reshape(
      tf.transpose(tf.reshape(x, [N, C, gh, p, gw, p]), [0, 2, 4, 1, 3, 5]), // [N, gh, gw, C, p, p]
      [N * gh * gw, C * p * p],
    ); // [N·T, C·p·p]
    const w = tf.reshape(this.weight, [this.hiddenSize, C * p * p]); // [D, C·p·p], (c, i, j) order as the conv
    return tf.reshape(linear2d(patches, w, this.bias), [N, gh * gw, this.hiddenSize]); // [N, T, D]
  }

  weights(): Params {
    return { 'proj.weight': this.weight, 'proj.bias': this.bias };
  }
}

/** Checks x `[N, C, H, W]` against the patch size, as InputErrors naming the shapes. */
export function checkImage(x: tf.Tensor, inChannels: number, patchSize: number): void {
  check(x != null && Array.isArray(x.shape), 'x must be a tensor [N, C, H, W].');
  check(x.dtype === 'float32', () => `x must be float32, got ${x.dtype}.`);
  check(
    x.rank === 4 && x.shape[1] === inChannels,
    () => `x must have shape [N, ${inChannels}, H, W] (NCHW, ${inChannels} channels), got ${fmtShape(x.shape)}.`,
  );
  const [, , H, W] = x.shape;
  check(
    H % patchSize === 0 && W % patchSize === 0 && H > 0 && W > 0,
    () =>
      `x is ${H}×${W}, which the patch size ${patchSize} does not divide; use a height and width that are multiples of ${patchSize} (e.g. ${Math.max(patchSize, Math.round(H / patchSize) * patchSize)}×${Math.max(patchSize, Math.round(W / patchSize) * patchSize)}).`,
  );
}

/**
 * PixArt's `t_embedder`: sinusoidal features (256) → Linear → SiLU → Linear (`mlp.0`, `mlp.2`), weights
 * N(0, 0.02²) as in DiT/PixArt.
 */
export class TimestepEmbedder {
  readonly fc0: Linear;
  readonly fc2: Linear;

  constructor(
    readonly hiddenSize: number,
    rng: Rng,
    readonly frequencySize = 256,
  ) {
    this.fc0 = new Linear(frequencySize, hiddenSize, { std: 0.02 }, rng);
    this.fc2 = new Linear(hiddenSize, hiddenSize, { std: 0.02 }, rng);
  }

  /**
   * @param t `[N]` float32 timesteps
   * @returns `[N, D]`
   */
  apply(t: tf.Tensor): tf.Tensor {
    const h = this.fc0.apply(timestepFeatures(t, this.frequencySize)); // [N, D]
    return this.fc2.apply(silu(h)); // [N, D]
  }

  weights(): Params {
    return { ...prefixed('mlp.0.', this.fc0.weights()), ...prefixed('mlp.2.', this.fc2.weights()) };
  }
}

/**
 * PixArt's `y_embedder`: caption features `[N, Lc, Dc]` → fc1 → GELU(tanh) → fc2 → `[N, Lc, D]`
 * (`y_proj.fc1`, `y_proj.fc2`, N(0, 0.02²)), plus the null caption `y_embedding` `[Lc, Dc]`
 * (N(0, 1/Dc), PixArt's buffer for classifier-free guidance; a non-trainable variable, since PyTorch does not
 * train buffers) when a caption length is configured.
 */
export class CaptionEmbedder {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly yEmbedding: tf.Variable | null;

  constructor(
    readonly captionChannels: number,
    readonly hiddenSize: number,
    readonly captionLength: number | undefined,
    rng: Rng,
  ) {
    this.fc1 = new Linear(captionChannels, hiddenSize, { std: 0.02 }, rng);
    this.fc2 = new Linear(hiddenSize, hiddenSize, { std: 0.02 }, rng);
    this.yEmbedding =
      captionLength == null
        ? null
        : makeVariable(
            initValues({ std: 1 / Math.sqrt(captionChannels) }, captionLength, captionChannels, rng),
            [captionLength, captionChannels],
            false,
          );
  }

  /**
   * @param y `[N, Lc, Dc]`
   * @returns `[N, Lc, D]`
   */
  apply(y: tf.Tensor): tf.Tensor {
    return this.fc2.apply(geluTanh(this.fc1.apply(y)));
  }

  weights(): Params {
    return {
      ...prefixed('y_proj.fc1.', this.fc1.weights()),
      ...prefixed('y_proj.fc2.', this.fc2.weights()),
      ...(this.yEmbedding ? { y_embedding: this.yEmbedding } : {}),
    };
  }
}

/** x·sigmoid(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}
