import { describeInfo, freshSeed, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import { describe, expect, it } from 'vitest';
import { pixartForward } from './pixart-f64.js';
import {
  PARITY_CASES,
  PARITY_SIZES,
  PARITY_TIMESTEPS,
  parityErrors,
  parityInputs,
  randomPixArtWeights,
  rangeOps,
} from './pixart-parity.js';

/**
 * The whole DiT against the float64 PixArt forward (`pixart-f64.ts`, which shares no code with it):
 * 2 blocks 64 wide, learned sigma, PixArt's state-dict names, timesteps across 0–999. Float32 itself
 * gets within 3e-7 here (cpu); the bound leaves room for an adapter's float32 arithmetic, not for an
 * approximate transcendental (SwiftShader's WGSL sin/cos moved this by 2e-4).
 */
describe.each(testBackends())('the DiT on %s against a float64 PixArt forward', (name) => {
  it('matches to 2e-5 relative for every timestep, with padded captions, no mask and the null caption', async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    const errors = await withNoLeaks(() => parityErrors(seed));
    for (const kase of PARITY_CASES) {
      const e = errors[kase];
      console.log(
        `DiT vs float64 PixArt on ${describeInfo(info)}, ${kase}: ${e.all.toExponential(2)} (per timestep ${e.perSample.map((v) => v.toExponential(1)).join(' ')})`,
      );
      expect(e.all, `seed ${seed} ${kase}`).toBeLessThan(2e-5);
      for (const [i, v] of e.perSample.entries()) expect(v, `seed ${seed} ${kase} t = ${PARITY_TIMESTEPS[i]}`).toBeLessThan(2e-5);
    }
  }, 300_000); // SwiftShader compiles each WGSL program through LLVM: the first forward alone takes 30-60 s
});

describe('the float64 PixArt reference', () => {
  it('drives the ops through the ranges their own tests cover: GELU beyond ±10, logits of tens, t = 999', async () => {
    const seed = freshSeed();
    const ranges = { gelu: 0, logit: 0, t: 0 };
    const w = randomPixArtWeights(PARITY_SIZES, seed);
    for (const kase of PARITY_CASES) await pixartForward(PARITY_SIZES, w, parityInputs(PARITY_SIZES, kase, seed), rangeOps(ranges));
    console.log(`reference ranges, seed ${seed}: ${JSON.stringify(ranges)}`);
    expect(ranges.gelu, `seed ${seed}`).toBeGreaterThan(10);
    expect(ranges.logit, `seed ${seed}`).toBeGreaterThan(25);
    expect(ranges.t).toBe(999);
  });
});
