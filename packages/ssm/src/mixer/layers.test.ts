import { freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { causalConv1dValues } from './conv1d.js';
import { causalConv1d, causalConv1dShifted } from './layers.js';

describe.each(testBackends())('causalConv1d on %s', (name) => {
  it('matches the PyTorch definition, and both formulations agree on value and gradients', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    for (const [B, L, C, K] of [
      [2, 9, 5, 4],
      [1, 3, 7, 4],
      [1, 6, 3, 2],
    ]) {
      const xv = randomArray(B * L * C, seed + L);
      const wv = randomArray(C * K, seed + 2 * L);
      const bv = randomArray(C, seed + 3 * L);
      const [x, w, bias] = [tf.tensor(xv, [B, L, C]), tf.tensor(wv, [C, 1, K]), tf.tensor(bv, [C])];
      const dy = tf.tensor(randomArray(B * L * C, seed + 4 * L), [B, L, C]);
      await withNoLeaks(async () => {
        const want = causalConv1dValues(xv, wv, bv, [B, L, C], K);
        const y = tf.tidy(() => causalConv1d(x, w, bias));
        const ys = tf.tidy(() => causalConv1dShifted(x, w, bias));
        expect(relErr(await y.data(), want), `seed ${seed}`).toBeLessThan(1e-6);
        expect(relErr(await ys.data(), want), `seed ${seed}`).toBeLessThan(1e-6);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => causalConv1d(a, b, c))([x, w, bias], dy);
        const gs = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => causalConv1dShifted(a, b, c))([x, w, bias], dy);
        for (let i = 0; i < 3; i++) expect(relErr(await g[i].data(), await gs[i].data()), `grad ${i}, seed ${seed}`).toBeLessThan(1e-5);
        tf.dispose([y, ys, ...g, ...gs]);
      });
      tf.dispose([x, w, bias, dy]);
    }
  });
});
