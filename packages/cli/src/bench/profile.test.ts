import { initBackend } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { profileOps } from './profile.js';

describe('profileOps', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it("counts the kernel under tf.fused.matMul once (its customGrad wrapper 'fusedMatMul__op' left out)", async () => {
    const [a, b, bias] = [tf.ones([4, 3]), tf.ones([3, 5]), tf.ones([5])];
    const prof = await profileOps(async () => {
      const y = tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias });
      await y.data();
      y.dispose();
    });
    const names = prof.ops.map((o) => o.op);
    expect(names).toContain('_FusedMatMul');
    expect(names.filter((n) => n.endsWith('__op') || n === 'unnamed scope')).toEqual([]);
    expect(prof.ops.reduce((s, o) => s + o.calls, 0)).toBe(prof.detail.reduce((s, o) => s + o.calls, 0));
    tf.dispose([a, b, bias]);
  });
});
