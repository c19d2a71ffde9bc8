import { describeInfo, freshSeed, randomArray, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { gatherRows, gatherRowsSplit } from './gather-rows.js';

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

  it('gatherRowsSplit equals the gather then a split of the last axis, bit for bit, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    console.log(`gatherRowsSplit: ${describeInfo(info)}, seed ${seed}`);
    for (const [[B, L, S], n, sizes] of [
      [[2, 6, 7], 12, [4, 1, 2]],
      [[3, 5, 16], 5, [8, 4, 4]],
      [[1, 4, 3], 9, [3]],
    ] as [number[], number, number[]][]) {
      const x = tf.tensor(randomArray(B! * L! * S!, seed + n), [B!, L!, S!]);
      const idx = Int32Array.from(randomArray(n, seed + 3 * n, 0, L!), Math.floor);
      const before = dataIds();
      await withNoLeaks(async () => {
        const got = gatherRowsSplit(x, idx, sizes);
        const want = tf.tidy(() => tf.split(tf.gather(x, tf.tensor1d(idx, 'int32'), 1), sizes, 2));
        expect(got.length).toBe(sizes.length);
        for (const [k, part] of got.entries()) {
          expect(part.shape, `part ${k} seed ${seed}`).toEqual(want[k]!.shape);
          expect(Array.from(await part.data()), `part ${k} sizes ${sizes} seed ${seed}`).toEqual(Array.from(await want[k]!.data()));
        }
        tf.dispose([...got, ...want]);
      });
      expect(dataIds()).toBe(before);
      x.dispose();
    }
  });
});
