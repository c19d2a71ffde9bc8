import { describeInfo, freshSeed, relErr, testBackends, tryBackend, useBackend } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { DiTConfig } from './config.js';
import { createDiT } from './dit.js';
import { tinyStudent } from './presets.js';
import { perturb, randomInputs } from './test-helpers.js';

/** Output and one mixer tap of a perturbed model, read back as arrays. */
async function run(config: DiTConfig, seed: number): Promise<{ out: Float32Array; tap: Float32Array }> {
  const model = createDiT(config);
  perturb(model, seed);
  const inp = randomInputs(model, 2, 16, 12, seed);
  const { out, taps } = model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask, capture: true });
  const res = { out: (await out.data()) as Float32Array, tap: (await taps[1].output.data()) as Float32Array };
  tf.dispose([out, ...taps.flatMap((t) => [t.input, t.output])]);
  inp.dispose();
  model.dispose();
  return res;
}

describe.each(testBackends().filter((b) => b !== 'cpu'))('DiT on %s', (name) => {
  it('matches the cpu forward of the same weights (SA and Mamba blocks, non-square grid)', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`DiT forward: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    const config = { ...tinyStudent, layout: 'SA-HM' };
    const got = await run(config, seed);
    await tryBackend('cpu');
    const want = await run(config, seed);
    expect(relErr(got.out, want.out), `seed ${seed}`).toBeLessThan(1e-4);
    expect(relErr(got.tap, want.tap), `seed ${seed}`).toBeLessThan(1e-4);
  });
});
