import { describeInfo, freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { adaNorm, adaNormRef } from './ada-norm.js';

describe.each(testBackends())('adaNorm on %s', (name) => {
  it('matches the tfjs-ops reference, forward and gradient, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`adaNorm: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    // D not a multiple of the workgroup, D above it, a single token, and offset/scaled rows
    for (const [N, T, D, K, sh, sc] of [
      [2, 5, 7, 6, 0, 1],
      [1, 3, 300, 6, 3, 4],
      [3, 1, 16, 2, 0, 1],
    ]) {
      const x = tf.tensor(randomArray(N * T * D, seed + D, -3, 5), [N, T, D]);
      const ada = tf.tensor(randomArray(N * K * D, seed + 2 * D, -1, 1), [N, K, D]);
      const dy = tf.tensor(randomArray(N * T * D, seed + 3 * D), [N, T, D]);
      await withNoLeaks(async () => {
        const [y, yRef] = [adaNorm(x, ada, sh, sc), adaNormRef(x, ada, sh, sc)];
        expect(relErr(await y.data(), await yRef.data()), `seed ${seed} D ${D}`).toBeLessThan(1e-5);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => adaNorm(a, b, sh, sc))([x, ada], dy);
        const gRef = tf.grads((a: tf.Tensor, b: tf.Tensor) => adaNormRef(a, b, sh, sc))([x, ada], dy);
        for (let i = 0; i < 2; i++)
          expect(relErr(await g[i].data(), await gRef[i].data()), `seed ${seed} D ${D} grad ${i}`).toBeLessThan(1e-4);
        tf.dispose([y, yRef, ...g, ...gRef]);
      });
      tf.dispose([x, ada, dy]);
    }
  });

  it('rejects mismatched shapes with a message naming them', async (ctx) => {
    await useBackend(name, ctx);
    const x = tf.zeros([2, 3, 4]);
    const ada = tf.zeros([2, 6, 5]);
    expect(() => adaNorm(x, ada, 0, 1)).toThrow(/ada must have shape \[2, K, 4\] to modulate x \[2, 3, 4\], got \[2, 6, 5\]/);
    tf.dispose([x, ada]);
  });
});
