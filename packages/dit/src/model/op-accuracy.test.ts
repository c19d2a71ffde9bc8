import { linear } from '@t2md/core';
import { describeInfo, freshSeed, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attention } from '../attention/index.js';
import { silu } from './embedders.js';
import { adaNorm } from './ops/ada-norm.js';
import { F64_OPS } from './pixart-f64.js';
import { normals } from './pixart-parity.js';

/**
 * The DiT's ops other than the timestep features and GELU (tested beside their kernels) against the
 * float64 ops of the PixArt reference, at the ranges a trained model reaches. Relative errors of a few
 * 1e-7 are float32 arithmetic (sums of 16–256 products, a softmax over tens of keys); an adapter
 * whose exp or inverseSqrt were loose would show up here first.
 */

/** Runs `f` on float32 copies of float64 arrays, checks it leaks nothing, and reads the result back. */
async function run(f: () => tf.Tensor): Promise<Float64Array> {
  return withNoLeaks(async () => {
    const t = tf.tidy(f);
    const v = Float64Array.from(await t.data());
    t.dispose();
    return v;
  });
}
const f32 = (a: Float64Array, shape: number[]) => tf.tensor(Float32Array.from(a), shape, 'float32');

/** The largest |q·k|/√Dh over unmasked pairs. */
function maxLogit(q: Float64Array, k: Float64Array, BH: number, Lq: number, Lk: number, Dh: number): number {
  let m = 0;
  for (let b = 0; b < BH; b++)
    for (let i = 0; i < Lq; i++)
      for (let j = 0; j < Lk; j++) {
        let s = 0;
        for (let d = 0; d < Dh; d++) s += q[(b * Lq + i) * Dh + d]! * k[(b * Lk + j) * Dh + d]!;
        m = Math.max(m, Math.abs(s) / Math.sqrt(Dh));
      }
  return m;
}

describe.each(testBackends())('DiT ops against float64 on %s', (name) => {
  it('attention, self and masked cross, with logits up to about 100', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`op accuracy: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    const [N, H, Dh] = [2, 4, 16];
    for (const [Lq, Lk, gain, masked] of [
      [48, 48, 1, false],
      [48, 48, 4.5, false],
      [48, 8, 4.5, true],
    ] as const) {
      const q = normals(N * H * Lq * Dh, seed, gain);
      const k = normals(N * H * Lk * Dh, seed + 1, gain);
      const v = normals(N * H * Lk * Dh, seed + 2);
      // batch entry 1 keeps only its first 5 caption tokens
      const mask = masked ? Uint8Array.from({ length: N * Lk }, (_, i) => (i < Lk || i % Lk < 5 ? 1 : 0)) : null;
      const got = await run(() =>
        attention(
          f32(q, [N, H, Lq, Dh]),
          f32(k, [N, H, Lk, Dh]),
          f32(v, [N, H, Lk, Dh]),
          mask ? { keyMask: tf.tensor2d(mask, [N, Lk], 'bool') } : {},
        ),
      );
      const want = await F64_OPS.attention(q, k, v, { N, H, Lq, Lk, Dh }, mask);
      const err = relErr(got, want);
      console.log(`attention ${name} ${Lq}×${Lk}, max |logit| ${maxLogit(q, k, N * H, Lq, Lk, Dh).toFixed(0)}: ${err.toExponential(2)}`);
      expect(err, `seed ${seed} gain ${gain}`).toBeLessThan(1e-6);
    }
  });

  // Row means N(0, 1) over spreads down to 0.05: an exactly rounded two-pass float32 LayerNorm gets
  // 1.3e-7 typically and up to 3.5e-7 on such rows, the mean's rounding on the narrowest rows with the
  // largest means. Over 5,000 seeds the WebGPU kernel on SwiftShader measured p50 1.8e-7, p99 4.7e-7,
  // max 7.1e-7 (its inverseSqrt and reduction order add to the mean's rounding), cpu and wasm at most
  // 2.7e-8. 1e-6 keeps a rare seed from failing CI, while a one-pass float32 variance (1.7e-6 to
  // 1.6e-4 over 200 seeds of these rows) or a loose inverseSqrt would still fail.
  it('the modulated LayerNorm on rows with offset means and spreads from 0.05 to 20', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    const [N, T, D] = [2, 24, 64];
    const x = normals(N * T * D, seed);
    const rowMean = normals(N * T, seed + 1);
    for (let r = 0; r < N * T; r++) {
      const spread = 0.05 * 400 ** (r / (N * T - 1)); // 0.05 … 20
      for (let d = 0; d < D; d++) x[r * D + d] = Math.fround(rowMean[r]! + spread * x[r * D + d]!);
    }
    const [shift, scale] = [normals(N * D, seed + 2), normals(N * D, seed + 3)];
    const got = await run(() => adaNorm(f32(x, [N, T, D]), tf.stack([f32(shift, [N, D]), f32(scale, [N, D])], 1), 0, 1));
    const err = relErr(got, await F64_OPS.modulatedNorm(x, shift, scale, N, D));
    console.log(`adaNorm ${name}: ${err.toExponential(2)}`);
    expect(err, `seed ${seed}`).toBeLessThan(1e-6);
  });

  it('SiLU over [−40, 40] and a linear layer over 256 inputs (the timestep MLP)', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    const xs = Float64Array.from({ length: 4000 }, (_, i) => Math.fround(-40 + (80 * i) / 3999));
    const s = await run(() => silu(f32(xs, [xs.length])));
    const sErr = relErr(s, await F64_OPS.silu(xs));
    const x = normals(8 * 256, seed);
    const w = { shape: [64, 256], data: normals(64 * 256, seed + 1, 1 / 16) };
    const b = { shape: [64], data: normals(64, seed + 2, 0.02) };
    const y = await run(() => linear(f32(x, [8, 256]), f32(w.data, w.shape), f32(b.data, b.shape)));
    const lErr = relErr(y, await F64_OPS.linear(x, w, b));
    console.log(`silu ${name}: ${sErr.toExponential(2)}, linear 256 → 64: ${lErr.toExponential(2)}`);
    expect(sErr, `seed ${seed}`).toBeLessThan(1e-7);
    expect(lErr, `seed ${seed}`).toBeLessThan(1e-6);
  });
});
