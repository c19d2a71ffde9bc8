/**
 * Test oracle (not exported from the package): Gaussian data x_0 ~ N(mu, s^2) independently per
 * dimension, for which the optimal denoiser and the probability-flow ODE are known in closed form.
 *
 * With x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps, x_t ~ N(sqrt(abar) mu, abar s^2 + 1 - abar), and
 *   E[eps | x_t] = sqrt(1 - abar) (x_t - sqrt(abar) mu) / (abar s^2 + 1 - abar)
 *   E[x_0 | x_t] = mu + sqrt(abar) s^2 (x_t - sqrt(abar) mu) / (abar s^2 + 1 - abar).
 * The probability-flow ODE keeps z = (x_t - sqrt(abar) mu) / sqrt(abar s^2 + 1 - abar) constant (it maps
 * each marginal onto the next monotonically, and all are Gaussian), so from the first model call's
 * abar_T = alphasCumprod[T - 1] its exact solution at abar = 1 is x_0 = mu + s z(x_T).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { PredictionType } from './prediction.js';
import type { ModelFn } from './sample.js';

export interface GaussianData {
  /** Per-dimension means and standard deviations, length D (samples are `[N, D]`). */
  readonly mu: readonly number[];
  readonly s: readonly number[];
}

/**
 * The exact denoiser for `data` as a model function over `[N, D]` samples. With `uncond`, a batch of
 * 2B rows is read as classifier-free guidance lays it out: rows [0, B) from `data`, rows [B, 2B) from
 * `uncond` (both with data's s). `calls` records each call's batch size and timestep.
 */
export function gaussianModel(
  data: GaussianData,
  alphasCumprod: Float64Array,
  prediction: PredictionType = 'epsilon',
  uncond?: GaussianData,
  calls?: { batch: number; t: number }[],
): ModelFn {
  return async (x, t, info) => {
    const tv = await t.data();
    if (calls) calls.push({ batch: x.shape[0], t: tv[0] });
    const [n, d] = x.shape as number[]; // [N, D]
    // Per-element coefficients in float64 on the host: few ops, and no slow broadcasting on cpu.
    // eps = sigma (x - alpha mu) / V,  x0 = mu + alpha s^2 (x - alpha mu) / V,  V = abar s^2 + 1 - abar.
    const shift = new Float32Array(n * d); // alpha mu
    const epsCoef = new Float32Array(n * d); // sigma / V
    const muRows = new Float32Array(n * d);
    const x0Coef = new Float32Array(n * d); // alpha s^2 / V
    for (let r = 0; r < n; r++) {
      const abar = alphasCumprod[tv[r]];
      const [alpha, sigma] = [Math.sqrt(abar), Math.sqrt(1 - abar)];
      const src = info.guided && uncond && r >= n / 2 ? uncond : data;
      for (let k = 0; k < d; k++) {
        const i = r * d + k;
        const s2 = data.s[k] ** 2;
        const v = abar * s2 + 1 - abar;
        muRows[i] = src.mu[k];
        shift[i] = alpha * src.mu[k];
        epsCoef[i] = sigma / v;
        x0Coef[i] = (alpha * s2) / v;
      }
    }
    return tf.tidy(() => {
      const centred = tf.sub(x, tf.tensor2d(shift, [n, d])); // [N, D]
      const eps = tf.mul(centred, tf.tensor2d(epsCoef, [n, d]));
      if (prediction === 'epsilon') return eps;
      const x0 = tf.add(tf.tensor2d(muRows, [n, d]), tf.mul(centred, tf.tensor2d(x0Coef, [n, d])));
      if (prediction === 'sample') return x0;
      // v = alpha eps - sigma x0, with per-row alpha and sigma
      const alpha = new Float32Array(n * d);
      const sigma = new Float32Array(n * d);
      for (let i = 0; i < n * d; i++) {
        const abar = alphasCumprod[tv[Math.floor(i / d)]];
        alpha[i] = Math.sqrt(abar);
        sigma[i] = Math.sqrt(1 - abar);
      }
      return tf.sub(tf.mul(eps, tf.tensor2d(alpha, [n, d])), tf.mul(x0, tf.tensor2d(sigma, [n, d])));
    });
  };
}

/** The exact probability-flow ODE solution for starting noise `xT` `[N, D]` (flat, row-major). */
export function exactOdeSolution(data: GaussianData, abarT: number, xT: ArrayLike<number>): Float64Array {
  const d = data.mu.length;
  const out = new Float64Array(xT.length);
  for (let i = 0; i < xT.length; i++) {
    const mu = data.mu[i % d];
    const s = data.s[i % d];
    out[i] = mu + (s * (xT[i] - Math.sqrt(abarT) * mu)) / Math.sqrt(abarT * s * s + 1 - abarT);
  }
  return out;
}

/** Root-mean-square difference. */
export function rms(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc += (a[i] - b[i]) ** 2;
  return Math.sqrt(acc / a.length);
}

/** Per-dimension mean and standard deviation of `[N, D]` samples (flat). */
export function columnStats(v: ArrayLike<number>, d: number): { mean: number[]; std: number[] } {
  const n = v.length / d;
  const mean = new Array<number>(d).fill(0);
  const sq = new Array<number>(d).fill(0);
  for (let i = 0; i < v.length; i++) mean[i % d] += v[i] / n;
  for (let i = 0; i < v.length; i++) sq[i % d] += (v[i] - mean[i % d]) ** 2 / (n - 1);
  return { mean, std: sq.map(Math.sqrt) };
}
