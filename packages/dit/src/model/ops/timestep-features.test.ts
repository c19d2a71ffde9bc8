import { describeInfo, freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { timestepFeatures } from './timestep-features.js';
import { frequencies } from './timestep-features-webgpu.js';

/** cos and sin of t·ω_k in float64, for the float32 value of each t: `[N, dim]`. */
function featuresF64(t: Float32Array, dim: number, maxPeriod = 10000): Float64Array {
  const half = dim / 2;
  const w = frequencies(half, maxPeriod);
  const out = new Float64Array(t.length * dim);
  t.forEach((tn, n) => {
    for (let k = 0; k < half; k++) {
      out[n * dim + k] = Math.cos(tn * w[k]!);
      out[n * dim + half + k] = Math.sin(tn * w[k]!);
    }
  });
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Timesteps the model sees: 0–999, integers and fractions, both ends, the two the issue named. */
function modelTimesteps(seed: number): Float32Array {
  return Float32Array.from([0, 1, 17, 128, 333.25, 611, 867, 999, 999.5, 0.001, ...randomArray(22, seed, 0, 1000)]);
}

/** Timesteps far outside, where t·ω_0 is up to 10⁵ radians: the range reduction must hold there too. */
const FAR = Float32Array.from([-3.5, 1234.5678, 24751, 65535, 1e5 + 0.25]);

describe.each(testBackends())('timestepFeatures on %s', (name) => {
  it('matches float64 cos and sin of t·ω to a few float32 ulps for timesteps up to 999 and beyond, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`timestepFeatures: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    // a float32 ulp of 1 is 1.2e-7: within 0–999 the features are within 2 of the exact values (the
    // issue saw 1.9e-4 on SwiftShader), within 4 far outside. Measured on SwiftShader over 3,000,000 t
    // spread over [0, 1000): at most 2.2e-7 (dim 256) and 2.1e-7 (dim 6), so the 22 fresh timesteps
    // stay under 2.5e-7; cpu and wasm 3e-8. Every integer t in 0–1000 (the int32 test): 1.9e-7.
    for (const [ts, tol] of [
      [modelTimesteps(seed), 2.5e-7],
      [FAR, 4.5e-7],
    ] as const) {
      for (const [dim, maxPeriod] of [
        [256, 10000],
        [6, 100],
      ] as const) {
        const t = tf.tensor1d(ts);
        const got = await withNoLeaks(async () => {
          const y = timestepFeatures(t, dim, maxPeriod);
          expect(y.shape).toEqual([ts.length, dim]);
          const v = await y.data();
          y.dispose();
          return v;
        });
        const err = maxAbsDiff(got, featuresF64(ts, dim, maxPeriod));
        console.log(`timestepFeatures ${name} dim ${dim}, t up to ${Math.max(...ts)}: max abs error ${err.toExponential(2)}`);
        expect(err, `seed ${seed} dim ${dim}`).toBeLessThan(tol);
        t.dispose();
      }
    }
  });

  it('accepts int32 timesteps, and its gradient in t matches the float64 derivative', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    const ts = Float32Array.from(randomArray(6, seed, 0, 1000), Math.round);
    const dim = 16;
    const [ti, t] = [tf.tensor1d(ts, 'int32'), tf.tensor1d(ts)];
    // int32 first: on webgpu a cast int32 tensor keeps its i32 buffer, which the kernel must convert
    await withNoLeaks(async () => {
      const a = timestepFeatures(ti, dim);
      expect(maxAbsDiff(await a.data(), featuresF64(ts, dim)), `seed ${seed}`).toBeLessThan(3.6e-7);
      a.dispose();
    });
    ti.dispose();
    const dy = tf.tensor2d(randomArray(6 * dim, seed + 1), [6, dim]);
    const dyv = await dy.data();
    const w = frequencies(dim / 2, 10000);
    const want = Array.from(ts, (tn, n) => {
      let s = 0;
      for (let k = 0; k < dim / 2; k++)
        s += w[k]! * (-Math.sin(tn * w[k]!) * dyv[n * dim + k]! + Math.cos(tn * w[k]!) * dyv[n * dim + dim / 2 + k]!);
      return s;
    });
    const g = await withNoLeaks(() => tf.grad((x: tf.Tensor) => timestepFeatures(x, dim))(t, dy));
    expect(relErr(await g.data(), want), `seed ${seed}`).toBeLessThan(1e-5);
    tf.dispose([t, dy, g]);
  });

  it('rejects timesteps of the wrong shape or type and an odd dim, naming them', async (ctx) => {
    await useBackend(name, ctx);
    const t2 = tf.zeros([2, 1]);
    const tb = tf.tensor1d([1, 0], 'bool');
    const t = tf.zeros([2]);
    expect(() => timestepFeatures(t2)).toThrow(/t must be a float32 or int32 tensor \[N\] of timesteps, got float32 \[2, 1\]/);
    expect(() => timestepFeatures(tb)).toThrow(/got bool \[2\]/);
    expect(() => timestepFeatures(t, 7)).toThrow(/dim must be even/);
    expect(() => timestepFeatures(t, 8, 0)).toThrow(/maxPeriod must be a positive number/);
    tf.dispose([t2, tb, t]);
  });
});
