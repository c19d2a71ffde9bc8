import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { recomputed, tapeIsRecording, withoutGradient } from './recompute.js';
import { freshSeed, randomArray, withNoLeaks } from './testing/index.js';

// A two-layer part with a mask: tanh((x·W1) ⊙ m + b)·W2, and its hidden layer as a second output.
function part(W1: tf.Variable, b: tf.Variable, W2: tf.Variable) {
  return ([x]: tf.Tensor[], [m]: tf.Tensor[]): tf.Tensor[] => {
    const h = tf.tanh(tf.add(tf.mul(tf.matMul(x!, W1), tf.cast(m!, 'float32')), b));
    return [tf.matMul(h, W2), h];
  };
}

describe('recomputed (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('gives the plain tape’s gradients through two stacked parts with two outputs each, keeps only inputs, leaks nothing', async () => {
    const seed = freshSeed();
    const v = (shape: number[], s: number) =>
      tf.variable(
        tf.tensor(
          randomArray(
            shape.reduce((a, c) => a * c, 1),
            seed + s,
          ),
          shape,
        ),
      );
    const [W1, b, W2, W3] = [v([4, 6], 1), v([6], 2), v([6, 4], 3), v([4, 6], 4)];
    const x = tf.tensor(randomArray(12, seed + 5), [3, 4]);
    const m = tf.tensor2d([1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1], [3, 6], 'bool');
    const f = part(W1, b, W2);
    const loss = (mode: 'plain' | 'recompute') => () => {
      let h = x;
      let aux: tf.Tensor = tf.scalar(0);
      for (let i = 0; i < 2; i++) {
        const [y, hid] = mode === 'plain' ? f([h], [m]) : recomputed((xs, cs) => f(xs, cs), [h], [W1, b, W2], [m]); // W3 is no part's weight
        h = y!;
        aux = tf.add(aux, tf.mean(tf.square(hid!)));
      }
      return tf.add(tf.sum(tf.matMul(h, W3)), aux) as tf.Scalar;
    };
    const gradsOf = (mode: 'plain' | 'recompute') =>
      withNoLeaks(async () => {
        const { value, grads } = tf.variableGrads(loss(mode), [W1, b, W2, W3]);
        const out: Record<string, number[]> = {};
        for (const [k, g] of Object.entries(grads)) out[k] = Array.from(await g.data());
        const l = (await value.data())[0];
        tf.dispose([value, ...Object.values(grads)]);
        return { l, out };
      });
    const plain = await gradsOf('plain');
    const again = await gradsOf('recompute');
    expect(again.l).toBe(plain.l);
    expect(Object.keys(again.out).sort()).toEqual(Object.keys(plain.out).sort());
    for (const [k, g] of Object.entries(plain.out)) {
      const a = again.out[k]!;
      for (let i = 0; i < g.length; i++) expect(a[i], `${k}[${i}], seed ${seed}`).toBeCloseTo(g[i]!, 5);
    }
    // a second backward works: the engine's tape was put back after the inner one
    expect((await gradsOf('recompute')).l).toBe(plain.l);
    tf.dispose([W1, b, W2, W3, x, m]);
  });

  it('leaves weights it is not given as constants, and runs plainly off a tape', async () => {
    const W = tf.variable(
      tf.tensor2d([
        [0.5, -1],
        [2, 0.25],
      ]),
    );
    const x = tf.tensor2d([[1, 2]]);
    // no path to W: W was a constant of the part
    expect(() => tf.variableGrads(() => tf.sum(recomputed(([a]) => tf.matMul(a!, W), [x], [])) as tf.Scalar, [W])).toThrow(
      /Cannot find a connection between any variable and the result/,
    );
    expect(tapeIsRecording()).toBe(false);
    const y = await withNoLeaks(() => recomputed(([a]) => tf.matMul(a!, W), [x], [W]));
    expect(Array.from(await y.data())).toEqual([4.5, -0.5]);
    const z = withoutGradient(() => tf.mul(x, 2));
    expect(Array.from(await z.data())).toEqual([2, 4]);
    tf.dispose([W, x, y, z]);
  });
});
