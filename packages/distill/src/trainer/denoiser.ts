/** A trained model (DiT + frozen caption encoder) as the sampler's `ModelFn` for given caption tokens. */
import { captionedDenoiser, type DenoiserFn, type DiT } from '@t2md/dit';
import * as tf from '@tensorflow/tfjs-core';
import type { TextEncoderLike } from './types.js';

/**
 * @param tokens int32 `[B, Lc]` and `mask` bool `[B, Lc]` (the tokenizer's output; Lc = the model's captionLength)
 * @param guided true when the sampler runs with a guidance scale ≠ 1 (it then calls with 2B rows:
 *   conditional first, unconditional second; see @t2md/dit's `captionedDenoiser`)
 * @returns the model function and a `dispose` for the caption features it holds
 */
export function captionDenoiser(
  trained: { model: DiT; encoder: TextEncoderLike },
  tokens: tf.Tensor,
  mask: tf.Tensor,
  guided: boolean,
): { model: DenoiserFn; dispose: () => void } {
  const y = tf.tidy(() => trained.encoder.encode(tokens, mask.dtype === 'bool' ? mask : tf.cast(mask, 'bool'))); // [B, Lc, Dc]
  try {
    return captionedDenoiser(trained.model, y, mask, guided);
  } finally {
    y.dispose();
  }
}
