import type { ElementwiseLayout } from '@t2md/core';
import { describeInfo, freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { gatedAdd, gatedAddRef } from './gated-add.js';

describe.each(testBackends())('gatedAdd on %s', (name) => {
  it('matches the tfjs-ops reference, forward and gradient, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`gatedAdd: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    for (const [N, T, D, K, gi] of [
      [2, 5, 7, 6, 2],
      [1, 3, 300, 6, 5],
      [3, 701, 12, 6, 0],
    ]) {
      const x = tf.tensor(randomArray(N * T * D, seed + D), [N, T, D]);
      const m = tf.tensor(randomArray(N * T * D, seed + 5 * D, -2, 2), [N, T, D]);
      const ada = tf.tensor(randomArray(N * K * D, seed + 2 * D), [N, K, D]);
      const dy = tf.tensor(randomArray(N * T * D, seed + 3 * D), [N, T, D]);
      await withNoLeaks(async () => {
        const [y, yRef] = [gatedAdd(x, m, ada, gi), gatedAddRef(x, m, ada, gi)];
        expect(relErr(await y.data(), await yRef.data()), `seed ${seed}`).toBeLessThan(1e-6);
        const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => gatedAdd(a, b, c, gi);
        const fRef = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => gatedAddRef(a, b, c, gi);
        const g = tf.grads(f)([x, m, ada], dy);
        const gRef = tf.grads(fRef)([x, m, ada], dy);
        for (let i = 0; i < 3; i++) expect(relErr(await g[i].data(), await gRef[i].data()), `seed ${seed} grad ${i}`).toBeLessThan(1e-5);
        tf.dispose([y, yRef, ...g, ...gRef]);
      });
      tf.dispose([x, m, ada, dy]);
    }
  });

  it('rejects a gate row outside ada', async (ctx) => {
    await useBackend(name, ctx);
    const x = tf.zeros([1, 2, 4]);
    const ada = tf.zeros([1, 6, 4]);
    expect(() => gatedAdd(x, x, ada, 6)).toThrow(/gateIdx \(6\) must be a row of ada \[1, 6, 4\]/);
    tf.dispose([x, ada]);
  });
});

/** The default layout, one vector per thread, and a tiny grid that has to stride over the blocks. */
const LAYOUTS: ElementwiseLayout[] = [
  'auto',
  { itemsPerThread: 1, workgroupSize: 64 },
  { itemsPerThread: 3, workgroupSize: 32, maxWorkgroups: 2 },
];

describe.each(LAYOUTS)('gatedAdd on webgpu with layout %o', (layout) => {
  it('matches the reference with the gate broadcast over tokens, vec4 or not', async (ctx) => {
    await useBackend('webgpu', ctx);
    const seed = freshSeed();
    // D = 7: scalar; D = 6: size a multiple of 4 but rows are not, so scalar; D = 12 and 300: vec4
    // with the gate row read per vector; 3 × 37 × 12 needs several strides of the tiny grid
    for (const [N, T, D, K, gi] of [
      [2, 5, 7, 6, 2],
      [2, 2, 6, 6, 1],
      [3, 37, 12, 6, 4],
      [2, 3, 300, 2, 1],
    ]) {
      const x = tf.tensor(randomArray(N * T * D, seed + D), [N, T, D]);
      const m = tf.tensor(randomArray(N * T * D, seed + 5 * D, -2, 2), [N, T, D]);
      const ada = tf.tensor(randomArray(N * K * D, seed + 2 * D), [N, K, D]);
      await withNoLeaks(async () => {
        const [y, yRef] = [gatedAdd(x, m, ada, gi, { layout }), gatedAddRef(x, m, ada, gi)];
        expect(relErr(await y.data(), await yRef.data()), `seed ${seed} D ${D}`).toBeLessThan(1e-6);
        tf.dispose([y, yRef]);
      });
      tf.dispose([x, m, ada]);
    }
  });
});
