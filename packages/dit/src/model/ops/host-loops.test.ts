import { describeInfo, freshSeed, randomArray, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { adaNormValues, gatedAddValues } from '../../testing.js';
import { adaNorm } from './ada-norm.js';
import { gatedAdd } from './gated-add.js';

const dataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();

// The cpu/wasm kernels of gatedAdd and adaNorm run the reference loops' float64 arithmetic in place on
// the backend's memory: the results must be the same floats, not merely close.
describe.each(['cpu', 'wasm'] as const)('gatedAdd and adaNorm kernels on %s', (name) => {
  it('give exactly the plain loops’ results on fresh random inputs, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    console.log(`gatedAdd/adaNorm loops: ${describeInfo(info)}, seed ${seed}`);
    for (const [N, T, D, K] of [
      [2, 5, 7, 6],
      [3, 33, 128, 2],
    ] as const) {
      const xv = randomArray(N * T * D, seed + D, -3, 3);
      const mv = randomArray(N * T * D, seed + 2 * D, -2, 2);
      const av = randomArray(N * K * D, seed + 3 * D);
      const [x, m, ada] = [tf.tensor(xv, [N, T, D]), tf.tensor(mv, [N, T, D]), tf.tensor(av, [N, K, D])];
      const before = dataIds();
      await withNoLeaks(async () => {
        const gi = K - 1;
        const y = gatedAdd(x, m, ada, gi);
        expect(Array.from(await y.data()), `gatedAdd seed ${seed}`).toEqual(Array.from(gatedAddValues(xv, mv, av, [N, T, D], K, gi)));
        const z = adaNorm(x, ada, 0, 1, 1e-6);
        const want = adaNormValues(xv, av, N, T, D, K, { shiftIdx: 0, scaleIdx: 1, eps: 1e-6 });
        expect(Array.from(await z.data()), `adaNorm seed ${seed}`).toEqual(Array.from(want));
        tf.dispose([y, z]);
      });
      expect(dataIds()).toBe(before);
      tf.dispose([x, m, ada]);
    }
  });
});
