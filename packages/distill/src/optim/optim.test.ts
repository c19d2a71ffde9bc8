import { initBackend } from '@t2md/core';
import { withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, clipByGlobalNorm } from './adamw.js';
import { Ema } from './ema.js';
import { learningRate } from './schedule.js';

/** PyTorch's AdamW, one element at a time, in float64. */
function adamwRef(p: number[], grads: number[][], lrs: number[], wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number[] {
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const out = [...p];
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < out.length; i++) {
      out[i] *= 1 - lrs[k] * wd;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - b2 ** t) + eps;
      out[i] -= (lrs[k] / (1 - b1 ** t)) * (m[i] / denom);
    }
  });
  return out;
}

describe('optimiser (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('AdamW matches PyTorch AdamW step by step; decay only on matrices', async () => {
    const w0 = [0.5, -1, 2, 0.25];
    const b0 = [1, -2];
    const grads = [
      [0.1, -0.3, 0.2, 0.05],
      [-0.2, 0.4, 0.1, 0.0],
      [0.3, 0.1, -0.5, 0.2],
    ];
    const bgrads = [
      [1, -1],
      [0.5, 0.5],
      [-2, 1],
    ];
    const lrs = [0.1, 0.05, 0.02];
    const w = tf.variable(tf.tensor2d(w0, [2, 2]));
    const b = tf.variable(tf.tensor1d(b0));
    const opt = new AdamW({ w, b }, { weightDecay: 0.1 });
    expect(opt.decayed).toEqual(['w']);
    await withNoLeaks(() => {
      for (let k = 0; k < 3; k++) {
        const g = { w: tf.tensor2d(grads[k], [2, 2]), b: tf.tensor1d(bgrads[k]) };
        opt.step(g, lrs[k]);
        tf.dispose(Object.values(g));
      }
    });
    const wRef = adamwRef(w0, grads, lrs, 0.1);
    const bRef = adamwRef(b0, bgrads, lrs, 0);
    const wv = await w.data();
    const bv = await b.data();
    for (const [i, x] of wRef.entries()) expect(wv[i]).toBeCloseTo(x, 5);
    for (const [i, x] of bRef.entries()) expect(bv[i]).toBeCloseTo(x, 5);
    expect(opt.t).toBe(3);
    opt.dispose();
    tf.dispose([w, b]);
  });

  it('AdamW state reloads into a fresh optimiser and continues bit-exactly', async () => {
    const make = () => tf.variable(tf.tensor1d([0.3, -0.7, 1.1]));
    const g1 = tf.tensor1d([0.2, -0.1, 0.4]);
    const g2 = tf.tensor1d([-0.3, 0.5, 0.1]);
    const a = make();
    const optA = new AdamW({ a });
    optA.step({ a: g1 }, 0.01);
    const saved = { t: optA.t, m: { a: tf.clone(optA.state().m.a) }, v: { a: tf.clone(optA.state().v.a) } };
    const b = tf.variable(tf.clone(a));
    optA.step({ a: g2 }, 0.01);
    const optB = new AdamW({ a: b });
    optB.load(saved);
    optB.step({ a: g2 }, 0.01);
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    expect(() => optB.load({ t: 1, m: {}, v: {} })).toThrow(/no optimizer m for 'a'/);
    optA.dispose();
    optB.dispose();
    tf.dispose([a, b, g1, g2, saved.m.a, saved.v.a]);
  });

  it('clipByGlobalNorm scales [3, 4] (norm 5) to norm 1 and leaves small gradients alone', async () => {
    const g = { x: tf.tensor1d([3]), y: tf.tensor1d([4]) };
    const clipped = clipByGlobalNorm(g, 1);
    expect((await clipped.norm.data())[0]).toBeCloseTo(5, 6);
    expect((await clipped.grads.x.data())[0]).toBeCloseTo(0.6, 5);
    expect((await clipped.grads.y.data())[0]).toBeCloseTo(0.8, 5);
    const loose = clipByGlobalNorm(g, 10);
    expect((await loose.grads.y.data())[0]).toBe(4);
    tf.dispose([...Object.values(g), ...Object.values(clipped.grads), clipped.norm, ...Object.values(loose.grads), loose.norm]);
  });

  it('Ema follows shadow = d shadow + (1 - d) p with the warm-up decay min(decay, (1+t)/(10+t))', async () => {
    const p = tf.variable(tf.tensor1d([0]));
    const ema = new Ema({ p }, 0.5);
    p.assign(tf.tensor1d([10]));
    ema.update(1); // d = min(0.5, 2/11) = 2/11: 0·2/11 + 10·9/11
    expect((await ema.weights().p.data())[0]).toBeCloseTo(90 / 11, 5);
    ema.update(100); // d = 0.5: (90/11 + 10) / 2
    expect((await ema.weights().p.data())[0]).toBeCloseTo((90 / 11 + 10) / 2, 5);
    ema.dispose();
    p.dispose();
  });

  it('learningRate: linear warm-up, then constant or cosine', () => {
    expect(learningRate(0, { lr: 1, warmupSteps: 4 })).toBe(0.25);
    expect(learningRate(3, { lr: 1, warmupSteps: 4 })).toBe(1);
    expect(learningRate(50, { lr: 1, warmupSteps: 4 })).toBe(1);
    const cos = { lr: 1, warmupSteps: 10, decay: 'cosine' as const, totalSteps: 110, minLr: 0.1 };
    expect(learningRate(10, cos)).toBeCloseTo(1, 10);
    expect(learningRate(60, cos)).toBeCloseTo(0.55, 10); // halfway: 0.1 + 0.45 (1 + cos(pi/2))
    expect(learningRate(110, cos)).toBeCloseTo(0.1, 10);
    expect(() => learningRate(-1, cos)).toThrow(/step must be an integer/);
  });
});
