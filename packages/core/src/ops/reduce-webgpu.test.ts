import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { describeInfo, freshSeed, randomArray, relErr, useBackend, withNoLeaks } from '../testing/index.js';
import { reductionView } from './reduce-webgpu.js';

describe('reductionView', () => {
  it('views x as [outer, reduced, inner] for one contiguous block of axes', () => {
    expect(reductionView([4, 5, 6], [0])).toEqual({ O: 1, R: 4, I: 30 });
    expect(reductionView([4, 5, 6], [1])).toEqual({ O: 4, R: 5, I: 6 });
    expect(reductionView([4, 5, 6], [2, 1])).toEqual({ O: 4, R: 30, I: 1 });
    expect(reductionView([4, 5, 6], [0, 2])).toBeNull();
  });
});

describe('sum and mean on webgpu', () => {
  it('match the cpu backend over leading, middle and innermost axes, large and small, without leaking', async (ctx) => {
    const seed = freshSeed();
    // [shape, axes, keepDims]: bias-gradient columns, the two-direction middle axis, a whole-tensor loss,
    // a long row set, short rows (tfjs's own path), a reduction over a size-1 axis
    const cases: [number[], number[], boolean][] = [
      [[3000, 12], [0], false],
      [[40_001, 8], [0], true],
      [[7, 40, 2, 5], [2], false],
      [[6, 33, 10], [1], true],
      [[4, 5000], [0, 1], false],
      [[3, 20_000], [1], true],
      [[50, 30], [1], false],
      [[5, 1, 7], [1], false],
    ];
    const data = cases.map(([shape], i) =>
      randomArray(
        shape.reduce((a, b) => a * b, 1),
        seed + i,
        -1,
        2,
      ),
    );
    await useBackend('cpu', ctx);
    const want: Float32Array[] = [];
    for (const [i, [shape, axes, keep]] of cases.entries()) {
      for (const op of [tf.sum, tf.mean]) {
        const r = op(tf.tensor(data[i]!, shape), axes, keep);
        want.push((await r.data()) as Float32Array);
      }
    }
    const info = await useBackend('webgpu', ctx);
    console.log(`reductions: running on ${describeInfo(info)}`);
    await withNoLeaks(async () => {
      let k = 0;
      for (const [i, [shape, axes, keep]] of cases.entries()) {
        const x = tf.tensor(data[i]!, shape);
        for (const op of [tf.sum, tf.mean]) {
          const r = op(x, axes, keep);
          const expectShape = shape.map((d, j) => (axes.includes(j) ? 1 : d)).filter((_, j) => keep || !axes.includes(j));
          expect(r.shape).toEqual(expectShape);
          expect(relErr(await r.data(), want[k++]!), `${shape} axes ${axes} seed ${seed}`).toBeLessThan(1e-5);
          r.dispose();
        }
        x.dispose();
      }
    });
  });
});
