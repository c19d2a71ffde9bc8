import { describeInfo, freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { gatedRmsNormFused } from './gated-norm.js';

/** y·silu(z) / √(mean over each group of (y·silu(z))² + eps), in float64. */
function gatedNormF64(y: Float32Array, z: Float32Array, group: number, eps: number): Float64Array {
  const g = Float64Array.from(y, (yv, i) => (yv * z[i]!) / (1 + Math.exp(-z[i]!)));
  const out = new Float64Array(g.length);
  for (let base = 0; base < g.length; base += group) {
    let ss = 0;
    for (let c = base; c < base + group; c++) ss += g[c]! ** 2;
    const r = 1 / Math.sqrt(ss / group + eps);
    for (let c = base; c < base + group; c++) out[c] = g[c]! * r;
  }
  return out;
}

describe.each(testBackends())('gatedRmsNormFused on %s against float64', (name) => {
  it('is within float32 rounding for gates z over [−30, 30] and rows spreading from 1e-3 to 1e3', async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    const [R, group] = [24, 128];
    const y = randomArray(R * group, seed, -1, 1);
    for (let r = 0; r < R; r++) for (let c = 0; c < group; c++) y[r * group + c]! *= 1e-3 * 1e6 ** (r / (R - 1));
    const z = randomArray(R * group, seed + 1, -30, 30);
    const got = await withNoLeaks(async () => {
      const out = tf.tidy(() => gatedRmsNormFused(tf.tensor2d(y, [R, group]), tf.tensor2d(z, [R, group]), group, 1e-5));
      const v = await out.data();
      out.dispose();
      return v;
    });
    const err = relErr(got, gatedNormF64(y, z, group, 1e-5));
    console.log(`gatedRmsNormFused vs float64 on ${describeInfo(info)}: ${err.toExponential(2)}`);
    expect(err, `seed ${seed}`).toBeLessThan(2e-7);
  });
});
