import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { describeInfo, freshSeed, randomArray, testBackends, useBackend, withNoLeaks } from '../testing/index.js';
import { hostSlice, hostSplit } from './host-slice.js';

const dataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();

describe.each(testBackends())('hostSlice and hostSplit on %s', (name) => {
  it('equal tf.slice and tf.split, forward and gradient, on fresh random inputs, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    console.log(`hostSlice: ${describeInfo(info)}, seed ${seed}`);
    const x = tf.tensor(randomArray(3 * 5 * 7 * 2, seed), [3, 5, 7, 2]);
    const dy = tf.tensor(randomArray(2 * 3 * 4 * 2, seed + 1), [2, 3, 4, 2]);
    const before = dataIds();
    await withNoLeaks(async () => {
      const [begin, size] = [
        [1, 2, 3, 0],
        [2, -1, 4, 2],
      ];
      const [a, b] = [hostSlice(x, begin, size), tf.slice(x, begin, size)];
      expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
      const [ga, gb] = [
        tf.grad((t: tf.Tensor) => hostSlice(t, begin, size))(x, dy),
        tf.grad((t: tf.Tensor) => tf.slice(t, begin, size))(x, dy),
      ];
      expect(Array.from(await ga.data())).toEqual(Array.from(await gb.data()));
      // runs that span several axes (trailing axes taken whole), a whole tensor, one element, rank 1
      for (const [bg, sz] of [
        [
          [1, 0, 0, 0],
          [2, 5, 7, 2],
        ],
        [
          [0, 3, 0, 0],
          [3, 2, 7, 2],
        ],
        [
          [0, 0, 0, 0],
          [3, 5, 7, 2],
        ],
        [
          [2, 4, 6, 1],
          [1, 1, 1, 1],
        ],
        [
          [0, 1, 2, 0],
          [3, 3, 5, 1],
        ],
      ]) {
        const [c, d] = [hostSlice(x, bg!, sz!), tf.slice(x, bg!, sz!)];
        expect(Array.from(await c.data()), `slice ${JSON.stringify([bg, sz])}`).toEqual(Array.from(await d.data()));
        tf.dispose([c, d]);
      }
      const flat = tf.reshape(x, [-1]);
      const [e, f] = [hostSlice(flat, [5], [17]), tf.slice(flat, [5], [17])];
      expect(Array.from(await e.data())).toEqual(Array.from(await f.data()));
      tf.dispose([flat, e, f]);
      const w = tf.tensor(randomArray(3 * 5 * 14, seed + 2), [3, 5, 14]);
      const loss = (split: (t: tf.Tensor) => tf.Tensor[]) => (t: tf.Tensor) =>
        tf.sum(
          tf.mul(
            tf.concat(
              split(t).map((p, i) => tf.mul(p, i + 1)),
              -1,
            ),
            w,
          ),
        );
      const xr = tf.reshape(x, [3, 5, 14]);
      const parts = hostSplit(xr, [3, 0, 11]);
      const want = tf.split(xr, [3, 0, 11], -1);
      for (let i = 0; i < 3; i++) expect(Array.from(await parts[i]!.data()), `part ${i}`).toEqual(Array.from(await want[i]!.data()));
      const [gs, gw] = [
        tf.grad(loss((t) => hostSplit(tf.reshape(t, [3, 5, 14]), [3, 0, 11])))(x),
        tf.grad(loss((t) => tf.split(tf.reshape(t, [3, 5, 14]), [3, 0, 11], -1)))(x),
      ];
      expect(Array.from(await gs.data())).toEqual(Array.from(await gw.data()));
      tf.dispose([a, b, ga, gb, w, xr, ...parts, ...want, gs, gw]);
    });
    expect(dataIds()).toBe(before);
    expect(() => hostSlice(x, [0, 0, 5, 0], [1, 1, 3, 1])).toThrow(/must lie within x \[3, 5, 7, 2\]/);
    expect(() => hostSplit(x, [1, 2])).toThrow(/sizes \[1,2\] must be non-negative integers summing to the last axis of x \[3, 5, 7, 2\]/);
    tf.dispose([x, dy]);
  });
});
