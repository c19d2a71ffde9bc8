import { InputError } from '@t2md/core';
import { freshSeed, randomArray, relErr, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { convertPrediction, PREDICTION_TYPES, predictionsFrom } from './prediction.js';

describe('prediction conversions', () => {
  it('agree with x_t = alpha x0 + sigma eps and v = alpha eps - sigma x0, in every direction', async (ctx) => {
    await useBackend('cpu', ctx);
    const seed = freshSeed();
    const n = 64;
    const x0v = randomArray(n, seed, -2, 2);
    const epsv = randomArray(n, seed + 1, -2, 2);
    for (const ab of [4e-5, 0.3, 0.999]) {
      const [a, s] = [Math.sqrt(ab), Math.sqrt(1 - ab)];
      const truth = {
        sample: Float32Array.from(x0v),
        epsilon: Float32Array.from(epsv),
        v: Float32Array.from(x0v, (x, i) => a * epsv[i] - s * x),
      };
      const x = tf.tensor(Float32Array.from(x0v, (v, i) => a * v + s * epsv[i]));
      await withNoLeaks(async () => {
        for (const from of PREDICTION_TYPES) {
          const out = tf.tensor(truth[from]);
          for (const to of PREDICTION_TYPES) {
            const got = convertPrediction(from, to, out, x, ab);
            // Recovering eps from x0 (or x0 from eps) divides by sigma (alpha): loosen where that amplifies rounding.
            const amp = (to === 'epsilon' && from === 'sample' ? a / s : 1) * (to === 'sample' && from === 'epsilon' ? s / a : 1);
            expect(relErr(await got.data(), truth[to]), `${from} -> ${to} at abar ${ab}, seed ${seed}`).toBeLessThan(2e-6 * (1 + amp * 10));
            got.dispose();
          }
          const { x0, eps } = predictionsFrom(from, out, x, ab);
          expect(relErr(await x0.data(), truth.sample), `x0 from ${from}`).toBeLessThan(1e-3);
          expect(relErr(await eps.data(), truth.epsilon), `eps from ${from}`).toBeLessThan(1e-3);
          tf.dispose([out, x0, eps]);
        }
      });
      x.dispose();
    }
  });

  it('rejects unknown types, mismatched shapes and alpha-bar outside (0, 1]', async (ctx) => {
    await useBackend('cpu', ctx);
    const a = tf.zeros([2, 3]);
    const b = tf.zeros([3, 2]);
    expect(() => convertPrediction('x0' as never, 'v', a, a, 0.5)).toThrow(/prediction must be one of 'epsilon', 'v', 'sample', got "x0"/);
    expect(() => convertPrediction('v', 'epsilon', a, b, 0.5)).toThrow(/out and x must have the same shape, got \[2, 3\] and \[3, 2\]/);
    expect(() => convertPrediction('v', 'epsilon', a, a, 0)).toThrow(InputError);
    expect(() => convertPrediction('v', 'epsilon', a, a, 1.5)).toThrow(/alphaBar must be a number in \(0, 1\]/);
    tf.dispose([a, b]);
  });
});
