import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { ElementwiseLayout } from '../kernel/elementwise-config.js';
import { describeInfo, freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '../testing/index.js';
import { geluTanh } from './gelu-tanh.js';

/** Reference made only of tfjs-core ops. */
function geluTanhRef(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
  });
}

describe.each(testBackends())('geluTanh on %s', (name) => {
  it('matches the tfjs-ops reference, forward and gradient, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`geluTanh: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    for (const shape of [[7], [3, 5, 11], [2, 300]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(randomArray(n, seed + n, -6, 6), shape);
      const dy = tf.tensor(randomArray(n, seed + 2 * n), shape);
      await withNoLeaks(async () => {
        const [y, yRef] = [geluTanh(x), geluTanhRef(x)];
        expect(relErr(await y.data(), await yRef.data()), `seed ${seed}`).toBeLessThan(1e-5);
        const g = tf.grad((v: tf.Tensor) => geluTanh(v))(x, dy);
        const gRef = tf.grad((v: tf.Tensor) => geluTanhRef(v))(x, dy);
        expect(relErr(await g.data(), await gRef.data()), `seed ${seed}`).toBeLessThan(1e-4);
        tf.dispose([y, yRef, g, gRef]);
      });
      tf.dispose([x, dy]);
    }
  });

  it('rejects a non-float input or a bad layout with a message naming it', async (ctx) => {
    await useBackend(name, ctx);
    const x = tf.tensor([1, 2], [2], 'int32');
    expect(() => geluTanh(x)).toThrow(/x must be float32, got int32/);
    const f = tf.tensor([1, 2], [2]);
    expect(() => geluTanh(f, { layout: { workgroupSize: 100 } })).toThrow(
      /layout.workgroupSize must be a power of two in 32..1024, got 100/,
    );
    tf.dispose([x, f]);
  });
});

/** The WebGPU layouts to cover: the default, one vector per thread, and a tiny grid that has to stride. */
const LAYOUTS: ElementwiseLayout[] = [
  'auto',
  { itemsPerThread: 1, workgroupSize: 64 },
  { itemsPerThread: 3, workgroupSize: 32, maxWorkgroups: 2 },
];

describe.each(LAYOUTS)('geluTanh on webgpu with layout %o', (layout) => {
  it('matches the reference on vec4 and scalar sizes, including a strided grid', async (ctx) => {
    await useBackend('webgpu', ctx);
    const seed = freshSeed();
    // 600 and 4096 take the vec4 path, 7 and 1030 the scalar one; with 2 workgroups of 32 threads
    // × 3 items, 1030 and 4096 need several grid strides
    for (const shape of [[7], [2, 300], [1030], [4, 1024]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = tf.tensor(randomArray(n, seed + n, -6, 6), shape);
      const dy = tf.tensor(randomArray(n, seed + 3 * n), shape);
      await withNoLeaks(async () => {
        const [y, yRef] = [geluTanh(x, { layout }), geluTanhRef(x)];
        expect(relErr(await y.data(), await yRef.data()), `seed ${seed} n ${n}`).toBeLessThan(1e-5);
        const g = tf.grad((v: tf.Tensor) => geluTanh(v, { layout }))(x, dy);
        const gRef = tf.grad((v: tf.Tensor) => geluTanhRef(v))(x, dy);
        expect(relErr(await g.data(), await gRef.data()), `seed ${seed} n ${n}`).toBeLessThan(1e-4);
        tf.dispose([y, yRef, g, gRef]);
      });
      tf.dispose([x, dy]);
    }
  });
});
