import { check, fmtShape } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import type { DiT } from './dit.js';

/** What a sampler calls: ε for `x` `[N, C, H, W]` at timesteps `t` `[N]`. */
export type DenoiserFn = (x: tf.Tensor, t: tf.Tensor) => tf.Tensor;

/**
 * The DiT as a sampler's model function over fixed caption features: the ε channels of the output
 * (learned sigma dropped), and, when `guided`, rows [B, 2B) conditioned on the null caption
 * (`y_embedder.y_embedding`, what caption dropout trained) — the unconditional half of classifier-free
 * guidance, in the same model call as the conditional half.
 * @param y `[B, Lc, Dc]` caption features; `yMask` `[B, Lc]` bool
 * @returns the function and a `dispose` for the features it holds (its own copies)
 */
export function captionedDenoiser(model: DiT, y: tf.Tensor, yMask: tf.Tensor, guided: boolean): { model: DenoiserFn; dispose: () => void } {
  check(y?.rank === 3 && yMask?.rank === 2, 'y must be [B, Lc, Dc] caption features and yMask [B, Lc].');
  const [B, Lc] = y.shape as [number, number, number];
  const mask = yMask.dtype === 'bool' ? tf.clone(yMask) : tf.cast(yMask, 'bool');
  const feats = tf.clone(y);
  let yAll = feats;
  let maskAll = mask;
  if (guided) {
    check(
      model.config.captionLength === Lc,
      () => `guidance needs captions of the null caption's length ${model.config.captionLength}, got y ${fmtShape(y.shape)}.`,
    );
    yAll = tf.tidy(() => tf.concat([feats, model.nullCaption(B)], 0)); // [2B, Lc, Dc]
    maskAll = tf.tidy(() => tf.concat([mask, tf.ones([B, Lc], 'bool')], 0)); // [2B, Lc]
  }
  const C = model.config.inChannels;
  const fn: DenoiserFn = (x, t) =>
    tf.tidy(() => {
      const n = x.shape[0];
      check(
        n === B || (guided && n === 2 * B),
        () => `the sampler passed ${n} rows but the captions hold ${B}${guided ? ` (or ${2 * B} guided)` : ''}.`,
      );
      const out = n === B ? model.forward(x, t, feats, { yMask: mask }) : model.forward(x, t, yAll, { yMask: maskAll });
      return out.shape[1] === C ? out : tf.slice(out, [0, 0, 0, 0], [-1, C, -1, -1]);
    });
  return { model: fn, dispose: () => tf.dispose(guided ? [feats, mask, yAll, maskAll] : [feats, mask]) };
}
