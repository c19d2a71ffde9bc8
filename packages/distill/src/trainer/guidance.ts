/**
 * Guidance pairs (`StageConfig.lambdaGuidance`, `t2md distill --lambda-guidance λ`): a loss on the
 * student's classifier-free-guidance direction g = ε(x_t, c) − ε(x_t, ∅) against its teacher's.
 *
 * Why: sampling multiplies g by the guidance scale (3.5 and up), so a student whose g is off draws what
 * its teacher would not; at high noise (t ≥ 700, where the layout is decided) the shapes student's g was
 * 30–66% off its teacher's, and it drew empty canvases. L_pseudo compares single predictions, of which g
 * is ~0.1% at high noise, so it hardly sees g. L_guidance compares g itself.
 *
 * How: the batch is paired (`pairRows`, `repeatFirstHalf`, called by `noiseBatch`): its rows B/2.. repeat
 * rows 0..B/2−1 (image, t, ε, x_t, target, caption) with the caption dropped, so one forward of B rows
 * gives ε(x_t, c) in the first half and ε(x_t, ∅) in the second, for student and teacher alike
 * (`guidanceLoss`). The step then sees B/2 distinct images, half of them with the null caption.
 *
 * Where λ may be set: `checkLossWeights` (loss-weights.ts).
 */
import { check, fmtShape } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { denoiseLoss, weightedDenoiseLoss } from '../losses/losses.js';

/**
 * Pairs a batch's draws in place: row i ≥ B/2 takes row i − B/2's t and noise scales, and the drop flags
 * become 0 for the first half and 1 for the second. It draws nothing and overwrites what was drawn, so
 * the RNG stream is the same with and without pairing.
 * @param ts `[B]` timesteps; `a`, `s` `[B]` √ᾱ_t and √(1 − ᾱ_t); `drop` `[B]` caption-drop flags
 */
export function pairRows(ts: Int32Array, a: Float32Array, s: Float32Array, drop: Uint8Array): void {
  const B = ts.length;
  check(B % 2 === 0, () => `a guidance-paired batch needs an even batch size, got ${B}.`);
  const h = B / 2;
  for (let i = 0; i < B; i++) {
    if (i >= h) [ts[i], a[i], s[i]] = [ts[i - h], a[i - h], s[i - h]];
    drop[i] = i >= h ? 1 : 0;
  }
}

/** `x` `[B, ...]` with rows B/2.. replaced by rows 0..B/2−1 (a new tensor; any dtype). */
export function repeatFirstHalf(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const first = tf.slice(x, 0, x.shape[0]! / 2); // [B/2, ...]
    return tf.concat([first, first], 0); // [B, ...]
  });
}

/**
 * L_guidance = mean over the B/2 pairs of w_i · mean((g_S,i − g_T,i)²), with g = ε[:B/2] − ε[B/2:] the
 * guidance direction of a paired batch (first half captioned, second half not) and w_i the pair's
 * L_pseudo weight (`highNoiseWeights`; absent: 1).
 * @param epsTeacher `[B, C, H, W]` the teacher's prediction (a constant)
 * @param epsStudent `[B, C, H, W]`
 * @param weight `[B]` per-row weights, equal within a pair (only the first half is read)
 */
export function guidanceLoss(epsTeacher: tf.Tensor, epsStudent: tf.Tensor, weight?: tf.Tensor): tf.Scalar {
  const B = epsStudent.shape[0]!;
  check(
    epsTeacher.shape.length === epsStudent.shape.length && epsTeacher.shape.every((d, i) => d === epsStudent.shape[i]),
    () => `epsTeacher and epsStudent must have the same shape, got ${fmtShape(epsTeacher.shape)} and ${fmtShape(epsStudent.shape)}.`,
  );
  check(B % 2 === 0, () => `guidanceLoss needs a paired batch (an even batch size), got ${B} rows.`);
  return tf.tidy(() => {
    const g = (eps: tf.Tensor) => tf.sub(tf.slice(eps, 0, B / 2), tf.slice(eps, B / 2, B / 2)); // [B/2, C, H, W]
    const [gT, gS] = [g(epsTeacher), g(epsStudent)];
    return weight ? weightedDenoiseLoss(gT, gS, tf.slice(weight, 0, B / 2)) : denoiseLoss(gT, gS);
  });
}
