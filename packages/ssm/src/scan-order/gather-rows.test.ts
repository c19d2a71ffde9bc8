import { describeInfo, freshSeed, randomArray, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { gatherRows } from './gather-rows.js';

const dataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();

describe.each(['cpu', 'wasm'] as const)('gatherRows on %s', (name) => {
  it("equals tfjs's gather along axis 1 (repeats, any trailing shape) on fresh random inputs, without leaking", async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    console.log(`gatherRows: ${describeInfo(info)}, seed ${seed}`);
    for (const [shape, n] of [
      [[3, 7, 5], 11],
      [[2, 9, 2, 3], 9],
      [[1, 4], 6],
    ] as [number[], number][]) {
      const x = tf.tensor(
        randomArray(
          shape.reduce((a, b) => a * b, 1),
          seed + n,
        ),
        shape,
      );
      const idx = Int32Array.from(randomArray(n, seed + 2 * n, 0, shape[1]!), Math.floor);
      const before = dataIds();
      await withNoLeaks(async () => {
        const [got, want] = [gatherRows(x, idx), tf.tidy(() => tf.gather(x, tf.tensor1d(idx, 'int32'), 1))];
        expect(got.shape, `seed ${seed}`).toEqual(want.shape);
        expect(Array.from(await got.data()), `shape ${shape} seed ${seed}`).toEqual(Array.from(await want.data()));
        tf.dispose([got, want]);
      });
      expect(dataIds()).toBe(before);
      x.dispose();
    }
  });
});
