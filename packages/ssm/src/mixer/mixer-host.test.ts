import { describeInfo, freshSeed, randomArray, relErr, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { causalConv1dSiluValues, gatedNormValues } from '../testing.js';
import { causalConv1dSilu } from './conv1d.js';
import { gatedRmsNormFused } from './gated-norm.js';

const dataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();

// wasm runs these as compositions of its own kernels (mixer-host.ts), cpu the loops themselves
describe.each(['cpu', 'wasm'] as const)('causalConv1dSilu and gatedRmsNormFused forward on %s', (name) => {
  it('match the float64 plain loops on fresh random inputs, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    console.log(`conv/norm loops: ${describeInfo(info)}, seed ${seed}`);
    for (const [B, L, C, K, S] of [
      [2, 17, 12, 4, 6],
      [3, 64, 40, 3, 40],
      [1, 2, 5, 4, 5], // shorter than the filter
    ] as const) {
      const xv = randomArray(B * L * C, seed + C, -3, 3);
      const wv = randomArray(C * K, seed + 2 * C);
      const bv = randomArray(C, seed + 3 * C);
      const zv = randomArray(B * L * C, seed + 4 * C, -4, 4);
      const [x, w, bias, z] = [tf.tensor(xv, [B, L, C]), tf.tensor(wv, [C, 1, K]), tf.tensor(bv, [C]), tf.tensor(zv, [B, L, C])];
      const before = dataIds();
      await withNoLeaks(async () => {
        const y = causalConv1dSilu(x, w, bias);
        const ec = relErr(await y.data(), causalConv1dSiluValues(xv, wv, bv, [B, L, C], K));
        const n = gatedRmsNormFused(x, z, S, 1e-5);
        const en = relErr(await n.data(), gatedNormValues(xv, zv, S, 1e-5));
        console.log(`  ${name} [${B}, ${L}, ${C}]: conv ${ec.toExponential(2)}, gated norm ${en.toExponential(2)}`);
        expect(ec, `conv seed ${seed}`).toBeLessThan(1e-6);
        expect(en, `gated norm seed ${seed}`).toBeLessThan(1e-6);
        tf.dispose([y, n]);
      });
      expect(dataIds()).toBe(before);
      tf.dispose([x, w, bias, z]);
    }
  });
});
