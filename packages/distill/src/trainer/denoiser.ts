/**
 * A trained model as the sampler's `ModelFn`: captions encoded once by the frozen caption encoder, the
 * null caption (`y_embedder.y_embedding`, what caption dropout trained) for the unconditional half of
 * classifier-free guidance, and the ε channels of the output (PixArt's learned sigma dropped).
 */
import { check, fmtShape } from '@t2md/core';
import type { DiT } from '@t2md/dit';
import type { ModelFn } from '@t2md/sampler';
import * as tf from '@tensorflow/tfjs-core';
import type { TextEncoderLike } from './types.js';

/**
 * @param tokens int32 `[B, Lc]` and `mask` bool `[B, Lc]` (the tokenizer's output; Lc = the model's captionLength)
 * @param guided true when the sampler runs with a guidance scale ≠ 1 (it then calls with 2B rows:
 *   conditional first, unconditional second)
 * @returns the model function and a `dispose` for the caption features it holds
 */
export function captionDenoiser(
  trained: { model: DiT; encoder: TextEncoderLike },
  tokens: tf.Tensor,
  mask: tf.Tensor,
  guided: boolean,
): { model: ModelFn; dispose: () => void } {
  const { model, encoder } = trained;
  check(tokens?.rank === 2 && mask?.rank === 2, 'tokens and mask must be [B, Lc] tensors from the tokenizer.');
  const B = tokens.shape[0];
  const boolMask = mask.dtype === 'bool' ? tf.clone(mask) : tf.cast(mask, 'bool');
  const y = encoder.encode(tokens, boolMask); // [B, Lc, Dc]
  let yAll = y;
  let maskAll = boolMask;
  if (guided) {
    const Lc = tokens.shape[1] as number;
    check(
      model.config.captionLength === Lc,
      () =>
        `guidance needs captions of the null caption's length ${model.config.captionLength}, got tokens ${fmtShape(tokens.shape)}; tokenize with maxTokens ${model.config.captionLength}.`,
    );
    yAll = tf.tidy(() => tf.concat([y, model.nullCaption(B)], 0)); // [2B, Lc, Dc]
    maskAll = tf.tidy(() => tf.concat([boolMask, tf.ones([B, Lc], 'bool')], 0)); // [2B, Lc]
  }
  const C = model.config.inChannels;
  const fn: ModelFn = (x, t) =>
    tf.tidy(() => {
      const n = x.shape[0];
      check(
        n === B || (guided && n === 2 * B),
        () => `the sampler passed ${n} rows but the captions hold ${B}${guided ? ` (or ${2 * B} guided)` : ''}.`,
      );
      const out = n === B ? model.forward(x, t, y, { yMask: boolMask }) : model.forward(x, t, yAll, { yMask: maskAll });
      return out.shape[1] === C ? out : tf.slice(out, [0, 0, 0, 0], [-1, C, -1, -1]);
    });
  return {
    model: fn,
    dispose: () => tf.dispose(guided ? [y, boolMask, yAll, maskAll] : [y, boolMask]),
  };
}
