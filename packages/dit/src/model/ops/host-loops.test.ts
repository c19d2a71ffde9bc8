import { describeInfo, freshSeed, randomArray, relErr, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { adaNormValues, gatedAddValues } from '../../testing.js';
import { adaNorm } from './ada-norm.js';
import { gatedAdd } from './gated-add.js';

const dataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();

// cpu's kernels of gatedAdd and adaNorm run the reference loops' float64 arithmetic in place on the
// backend's memory: the results must be the same floats, not merely close. wasm's compose its XNNPACK
// kernels (dit-host.ts), each rounding to float32: within a few float32 roundings of the loops.
const TOL = { cpu: 0, wasm: 1e-6 } as const;

/** Same floats when `tol` is 0, else relErr below `tol` and every value within `tol`·(1 + |want|)·8. */
function expectLoop(got: ArrayLike<number>, want: Float32Array, tol: number, what: string): void {
  if (tol === 0) {
    expect(Array.from(got), what).toEqual(Array.from(want));
    return;
  }
  expect(relErr(got, want), what).toBeLessThan(tol);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  expect(worst, `${what}: worst element`).toBeLessThan(8 * tol);
}

describe.each(['cpu', 'wasm'] as const)('gatedAdd and adaNorm kernels on %s', (name) => {
  it('give the plain loops’ results on fresh random inputs, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    console.log(`gatedAdd/adaNorm loops: ${describeInfo(info)}, seed ${seed}`);
    for (const [N, T, D, K] of [
      [2, 5, 7, 6],
      [3, 33, 128, 2],
      [2, 256, 128, 6],
    ] as const) {
      const xv = randomArray(N * T * D, seed + D, -3, 3);
      const mv = randomArray(N * T * D, seed + 2 * D, -2, 2);
      const av = randomArray(N * K * D, seed + 3 * D);
      const [x, m, ada] = [tf.tensor(xv, [N, T, D]), tf.tensor(mv, [N, T, D]), tf.tensor(av, [N, K, D])];
      const before = dataIds();
      await withNoLeaks(async () => {
        const gi = K - 1;
        const y = gatedAdd(x, m, ada, gi);
        expectLoop(await y.data(), gatedAddValues(xv, mv, av, [N, T, D], K, gi), TOL[name], `gatedAdd seed ${seed}`);
        const z = adaNorm(x, ada, 0, 1, 1e-6);
        const want = adaNormValues(xv, av, N, T, D, K, { shiftIdx: 0, scaleIdx: 1, eps: 1e-6 });
        expectLoop(await z.data(), want, TOL[name], `adaNorm seed ${seed}`);
        tf.dispose([y, z]);
      });
      expect(dataIds()).toBe(before);
      tf.dispose([x, m, ada]);
    }
  });
});
