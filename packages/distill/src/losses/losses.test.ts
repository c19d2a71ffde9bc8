import { initBackend } from '@t2md/core';
import { withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { denoiseLoss, forcingLoss, mixerLoss, pseudoLoss, sumAll, totalLoss } from './losses.js';

async function value(t: tf.Tensor): Promise<number> {
  const v = (await t.data())[0];
  t.dispose();
  return v;
}

describe('losses, on values worked out by hand (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('denoiseLoss = mean((eps - epsHat)^2)', async () => {
    const eps = tf.tensor4d([1, 2, 3, 4], [1, 1, 2, 2]);
    const epsHat = tf.tensor4d([0, 2, 5, 4], [1, 1, 2, 2]);
    // differences 1, 0, -2, 0 -> squares 1, 0, 4, 0 -> mean 5/4
    expect(await withNoLeaks(() => value(denoiseLoss(eps, epsHat)))).toBeCloseTo(1.25, 6);
    tf.dispose([eps, epsHat]);
  });

  it('pseudoLoss = mean((epsTeacher - epsStudent)^2)', async () => {
    const a = tf.tensor4d([1, 1, 1, 1], [2, 1, 1, 2]);
    const b = tf.tensor4d([0, 0, 0, 3], [2, 1, 1, 2]);
    // 1 + 1 + 1 + 4 = 7 over 4 elements
    expect(await value(pseudoLoss(a, b))).toBeCloseTo(1.75, 6);
    tf.dispose([a, b]);
  });

  it('mixerLoss = (1/N) sum_n mean((fT_n - fS_n)^2)', async () => {
    const t0 = tf.zeros([1, 2, 2]);
    const s0 = tf.ones([1, 2, 2]); // layer 0: mean 1
    const t1 = tf.fill([1, 1, 4], 2);
    const s1 = tf.zeros([1, 1, 4]); // layer 1: mean 4
    expect(await withNoLeaks(() => value(mixerLoss([t0, t1], [s0, s1])))).toBeCloseTo(2.5, 6);
    tf.dispose([t0, s0, t1, s1]);
  });

  it('forcingLoss = sum_n mean((MA_n(h_n) - SA_n(h_n))^2), and its gradient', async () => {
    const w = tf.variable(tf.scalar(2));
    const layers = [
      // 2·[1, 2] = [2, 4] against [2, 5]: differences 0, -1 -> mean 0.5
      { mixer: (h: tf.Tensor) => tf.mul(h, w), input: tf.tensor3d([1, 2], [1, 1, 2]), target: tf.tensor3d([2, 5], [1, 1, 2]) },
      // [0, 0, 0] + 1 against [1, 1, 4]: differences 0, 0, -3 -> mean 3
      { mixer: (h: tf.Tensor) => tf.add(h, 1), input: tf.zeros([1, 3, 1]), target: tf.tensor3d([1, 1, 4], [1, 3, 1]) },
    ];
    expect(await withNoLeaks(() => value(forcingLoss(layers)))).toBeCloseTo(3.5, 6);
    // d/dw mean((w h - t)^2) = mean(2 (w h - t) h) = (2·0·1 + 2·(-1)·2) / 2 = -2 (layer 1 has no w)
    const { value: v, grads } = tf.variableGrads(() => forcingLoss(layers), [w]);
    expect(await value(grads[w.name])).toBeCloseTo(-2, 6);
    v.dispose();
    tf.dispose([w, ...layers.flatMap((l) => [l.input, l.target])]);
  });

  it('totalLoss = mse + 0.5 pseudo + 0.2 mixer (+ λ_g guidance, default 0), with configurable lambdas', async () => {
    const [mse, pseudo, mixer, guidance] = [tf.scalar(1), tf.scalar(2), tf.scalar(10), tf.scalar(100)];
    expect(await value(totalLoss({ mse, pseudo, mixer }))).toBeCloseTo(1 + 1 + 2, 6);
    expect(await value(totalLoss({ mse, pseudo, mixer, guidance }))).toBeCloseTo(1 + 1 + 2, 6);
    expect(await value(totalLoss({ mse, guidance }, { lambdaGuidance: 0.5 }))).toBeCloseTo(1 + 50, 6);
    expect(() => totalLoss({ mse, guidance }, { lambdaGuidance: -1 })).toThrow(/lambdaGuidance must be a finite number >= 0, got -1/);
    expect(await value(totalLoss({ mse, pseudo, mixer }, { lambdaPseudo: 1, lambdaMixer: 0 }))).toBeCloseTo(3, 6);
    expect(await value(totalLoss({ mse }))).toBeCloseTo(1, 6);
    expect(mse.isDisposed).toBe(false);
    expect(() => totalLoss({ mse, pseudo }, { lambdaPseudo: -1 })).toThrow(/lambdaPseudo must be a finite number >= 0, got -1/);
    tf.dispose([mse, pseudo, mixer, guidance]);
  });

  it('sumAll adds many tensors pairwise (no tf.addN: WebGPU binds at most 8 buffers per shader)', async () => {
    const xs = Array.from({ length: 21 }, (_, i) => tf.scalar(i + 1));
    expect(await withNoLeaks(() => value(sumAll(xs)))).toBe(231); // 21·22/2
    const one = tf.tensor1d([2, 3]);
    const copy = sumAll([one]); // a single tensor comes back as a copy the caller owns
    expect(Array.from(await copy.data())).toEqual([2, 3]);
    expect(copy).not.toBe(one);
    copy.dispose();
    tf.dispose([...xs, one]);
  });

  it('rejects mismatched shapes and counts with one message naming them', () => {
    const a = tf.zeros([1, 3, 4, 4]);
    const b = tf.zeros([1, 3, 4, 2]);
    expect(() => denoiseLoss(a, b)).toThrow('eps and epsHat must have the same shape, got [1, 3, 4, 4] and [1, 3, 4, 2].');
    expect(() => mixerLoss([a], [a, a])).toThrow(/1 teacher layers and 2 student layers/);
    expect(() => pseudoLoss(tf.zeros([2], 'int32'), a)).toThrow(/epsTeacher must be float32, got int32/);
    tf.dispose([a, b]);
  });
});
