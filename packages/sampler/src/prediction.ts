/**
 * What a model predicts, and conversions between the three parametrisations.
 *
 * With x_t = alpha x_0 + sigma eps, alpha = sqrt(alpha-bar_t), sigma = sqrt(1 - alpha-bar_t):
 *   epsilon: eps                       (DDPM, PixArt)
 *   v:       v = alpha eps - sigma x_0 (Salimans & Ho 2022, "Progressive Distillation", sec. 4)
 *   sample:  x_0
 */

import { assertOneOf, check } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';

export const PREDICTION_TYPES = ['epsilon', 'v', 'sample'] as const;
export type PredictionType = (typeof PREDICTION_TYPES)[number];

/** diffusers' name for v is `v_prediction`; accepted as an alias. */
export function resolvePrediction(prediction: unknown = 'epsilon'): PredictionType {
  const p = prediction === 'v_prediction' ? 'v' : prediction;
  assertOneOf('prediction', p, PREDICTION_TYPES);
  return p;
}

function alphaSigma(alphaBar: number): [number, number] {
  check(
    typeof alphaBar === 'number' && alphaBar > 0 && alphaBar <= 1,
    () => `alphaBar must be a number in (0, 1], got ${String(alphaBar)}.`,
  );
  return [Math.sqrt(alphaBar), Math.sqrt(1 - alphaBar)];
}

/**
 * The clean-sample and noise estimates implied by a model output `out` for `x` (= x_t) at
 * alpha-bar `alphaBar`. Both are computed directly from `out` (not one from the other), so an epsilon
 * model's eps is passed through exactly even where alpha is tiny. Returns new tensors shaped like `x`.
 */
export function predictionsFrom(
  prediction: PredictionType,
  out: tf.Tensor,
  x: tf.Tensor,
  alphaBar: number,
): { x0: tf.Tensor; eps: tf.Tensor } {
  const [a, s] = alphaSigma(alphaBar);
  return tf.tidy(() => {
    if (prediction === 'epsilon') {
      return { x0: tf.div(tf.sub(x, tf.mul(out, s)), a), eps: tf.clone(out) };
    }
    if (prediction === 'v') {
      // x_0 = alpha x_t - sigma v ; eps = sigma x_t + alpha v
      return { x0: tf.sub(tf.mul(x, a), tf.mul(out, s)), eps: tf.add(tf.mul(x, s), tf.mul(out, a)) };
    }
    check(s > 0, 'a sample-predicting model cannot be used at alpha-bar = 1 (no noise to recover).');
    return { x0: tf.clone(out), eps: tf.div(tf.sub(x, tf.mul(out, a)), s) };
  });
}

/**
 * Converts a model output between parametrisations at one noise level: `out` is a `from` prediction
 * for `x` (= x_t) at alpha-bar `alphaBar`; returns the equivalent `to` prediction (a new tensor).
 */
export function convertPrediction(from: PredictionType, to: PredictionType, out: tf.Tensor, x: tf.Tensor, alphaBar: number): tf.Tensor {
  from = resolvePrediction(from);
  to = resolvePrediction(to);
  check(
    out.shape.length === x.shape.length && out.shape.every((d, i) => d === x.shape[i]),
    () => `out and x must have the same shape, got [${out.shape.join(', ')}] and [${x.shape.join(', ')}].`,
  );
  if (from === to) return tf.clone(out);
  const [a, s] = alphaSigma(alphaBar);
  return tf.tidy(() => {
    const { x0, eps } = predictionsFrom(from, out, x, alphaBar);
    if (to === 'sample') return x0;
    if (to === 'epsilon') return eps;
    return tf.sub(tf.mul(eps, a), tf.mul(x0, s));
  });
}
