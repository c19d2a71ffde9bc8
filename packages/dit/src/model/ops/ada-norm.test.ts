import type { ElementwiseLayout } from '@t2md/core';
import { describeInfo, freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { adaNorm, adaNormRef } from './ada-norm.js';

describe.each(testBackends())('adaNorm on %s', (name) => {
  it('matches the tfjs-ops reference, forward and gradient, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`adaNorm: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    // D not a multiple of the workgroup, D above it, a single token, and offset/scaled rows; on webgpu
    // the long T runs the fused gradient's partial sums over many slices (with a short last one)
    for (const [N, T, D, K, sh, sc] of [
      [2, 5, 7, 6, 0, 1],
      [1, 3, 300, 6, 3, 4],
      [3, 1, 16, 2, 0, 1],
      [3, 701, 12, 6, 4, 3],
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

/** The default layout, one vector per thread, and a tiny grid (2 workgroups striding over the rows). */
const LAYOUTS: ElementwiseLayout[] = [
  'auto',
  { itemsPerThread: 1, workgroupSize: 64 },
  { itemsPerThread: 3, workgroupSize: 32, maxWorkgroups: 2 },
];

describe.each(LAYOUTS)('adaNorm on webgpu with layout %o', (layout) => {
  it('matches the reference on vec4 and scalar rows, one or several vectors per thread', async (ctx) => {
    await useBackend('webgpu', ctx);
    const seed = freshSeed();
    // D = 7: scalar rows; D = 12: vec4, 3 vectors in a row of 32 threads; D = 300 (75 vec4) and
    // D = 1030 (scalar, 1030 > 32 · 8 under the tiny layout: falls back to v1) over 5-7 rows
    for (const [N, T, D, K, sh, sc] of [
      [2, 5, 7, 6, 0, 1],
      [3, 2, 12, 6, 3, 4],
      [1, 5, 300, 2, 1, 0],
      [1, 2, 1030, 6, 2, 5],
    ]) {
      const x = tf.tensor(randomArray(N * T * D, seed + D, -3, 5), [N, T, D]);
      const ada = tf.tensor(randomArray(N * K * D, seed + 2 * D, -1, 1), [N, K, D]);
      await withNoLeaks(async () => {
        const [y, yRef] = [adaNorm(x, ada, sh, sc, 1e-6, { layout }), adaNormRef(x, ada, sh, sc)];
        expect(relErr(await y.data(), await yRef.data()), `seed ${seed} D ${D}`).toBeLessThan(1e-5);
        tf.dispose([y, yRef]);
      });
      tf.dispose([x, ada]);
    }
  });
});
