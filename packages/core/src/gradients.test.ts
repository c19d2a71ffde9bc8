import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { gradientsRegistered } from './gradients.js';
import { freshSeed, hostBuiltSizes, randomArray, relErr, testBackends, useBackend, withNoLeaks } from './testing/index.js';

/** dy spread over the reduced axes, by hand over typed arrays (row-major). */
function spreadByHand(dy: Float32Array, shape: number[], axes: number[], scale: number): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  for (let flat = 0; flat < out.length; flat++) {
    let rest = flat;
    let idx = 0;
    let stride = 1;
    for (let i = shape.length - 1; i >= 0; i--) {
      const c = rest % shape[i];
      rest = Math.floor(rest / shape[i]);
      if (kept[i] !== 1) idx += c * stride;
      stride *= kept[i];
    }
    out[flat] = dy[idx] * scale;
  }
  return out;
}

const CASES: { shape: number[]; axis: number | number[] | undefined; keepDims: boolean }[] = [
  { shape: [3, 5, 7], axis: -1, keepDims: true },
  { shape: [3, 5, 7], axis: [0, 2], keepDims: false },
  { shape: [2, 3, 4, 5, 6], axis: [1, 3], keepDims: true }, // rank 5: where WebGPU's Tile falls back to the CPU
  { shape: [4, 6], axis: undefined, keepDims: false }, // a whole-tensor reduction, as a loss is
];

describe.each(testBackends())('Sum and Mean gradients on %s', (name) => {
  it('spread dy over the reduced axes without building x-sized tensors on the host', async (ctx) => {
    await useBackend(name, ctx);
    expect(gradientsRegistered()).toBe(true);
    const seed = freshSeed();
    for (const { shape, axis, keepDims } of CASES) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(randomArray(n, seed + n, -2, 2), shape);
      const axes = axis === undefined ? shape.map((_, i) => i) : tf.util.parseAxisParam(axis, shape);
      const count = axes.reduce((c, a) => c * shape[a], 1);
      const outShape = keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
      const dyData = randomArray(n / count, seed + 1);
      const dy = tf.tensor(dyData, outShape);
      for (const op of ['sum', 'mean'] as const) {
        const tag = `${op} over ${JSON.stringify(axis)} of [${shape}], seed ${seed}`;
        await withNoLeaks(async () => {
          let g: tf.Tensor | undefined;
          const sizes = await hostBuiltSizes(async () => {
            g = tf.grad((v: tf.Tensor) => (op === 'sum' ? tf.sum(v, axis, keepDims) : tf.mean(v, axis, keepDims)))(x, dy);
            await g.data();
          });
          if (g == null) throw new Error('no gradient');
          expect(g.shape, tag).toEqual(shape);
          expect(relErr(await g.data(), spreadByHand(dyData, shape, axes, op === 'mean' ? 1 / count : 1)), tag).toBeLessThan(1e-6);
          expect(Math.max(0, ...sizes), `largest host-built tensor, ${tag}`).toBeLessThan(n);
          g.dispose();
        });
      }
      tf.dispose([x, dy]);
    }
  });

  it('agree with a finite difference through a mean-squared loss', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    const x = tf.tensor(randomArray(24, seed, -1, 1), [2, 3, 4]);
    const loss = (v: tf.Tensor) => tf.mean(tf.square(tf.sum(v, 1))) as tf.Scalar;
    await withNoLeaks(async () => {
      const g = tf.grad(loss)(x);
      const xs = await x.data();
      const gs = await g.data();
      const h = 1e-2;
      for (const i of [0, 7, 23]) {
        const at = async (d: number) => {
          const v = Float32Array.from(xs);
          v[i] += d;
          const l = tf.tidy(() => loss(tf.tensor(v, x.shape)));
          const r = (await l.data())[0];
          l.dispose();
          return r;
        };
        const fd = ((await at(h)) - (await at(-h))) / (2 * h);
        expect(Math.abs(gs[i] - fd), `element ${i}, seed ${seed}`).toBeLessThan(1e-3 * Math.max(1, Math.abs(fd)));
      }
      g.dispose();
    });
    x.dispose();
  });
});
