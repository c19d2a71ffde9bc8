import { Rng } from '@t2md/core';
import { describeInfo, relErr, testBackends, useBackend } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { exactOdeSolution, type GaussianData, gaussianModel, rms } from './gaussian-oracle.js';
import { type ModelFn, sample } from './sample.js';
import { alphasCumprod } from './schedule.js';

const AB = alphasCumprod();
const DATA: GaussianData = { mu: [1.5, -0.7, 0.3, 0], s: [0.5, 0.7, 1, 1.5] };
const SHAPE = [3, 4];

/** Per backend: the first model input (the seeded noise), and a DDPM result (seeded per-step noise too). */
const seen = new Map<string, { noise: Float32Array; ddpm: Float32Array }>();

describe.each(testBackends())('sample() on %s', (name) => {
  it('draws the same seeded noise as every other backend, and matches the exact ODE solution', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`sampler: running on ${describeInfo(info)}`);
    const before = tf.memory().numTensors;
    let noise: Float32Array | undefined;
    const inner = gaussianModel(DATA, AB);
    const model: ModelFn = async (x, t, i) => {
      if (noise == null) noise = (await x.data()) as Float32Array;
      return inner(x, t, i);
    };
    const ddpm = await sample({ model, sampler: 'ddpm', steps: 6, shape: SHAPE, seed: 1234 });
    seen.set(name, { noise: noise!, ddpm: (await ddpm.data()) as Float32Array });
    ddpm.dispose();
    const want = new Rng(1234).randn(SHAPE);
    expect(Array.from(noise!)).toEqual(Array.from(await want.data()));
    want.dispose();

    // Guidance with an unconditional model of other means: out = uncond + w (cond - uncond). For these
    // Gaussians eps is linear in mu at a fixed s, so the guided model is exactly the denoiser of the
    // data with mean mu_u + w (mu - mu_u): the guided run must equal an unguided run of that model (to
    // float32 rounding), and approach the exact ODE solution of it as the steps grow.
    const w = 2;
    const uncond: GaussianData = { mu: [0.5, 0.4, -0.6, 1], s: DATA.s };
    const target: GaussianData = { mu: DATA.mu.map((m, k) => uncond.mu[k] + w * (m - uncond.mu[k])), s: DATA.s };
    const init = new Rng(9).randn(SHAPE);
    const exact = exactOdeSolution(target, AB[999], await init.data());
    const run = async (model: ModelFn, steps: number, guidance?: { scale: number }) => {
      const x = await sample({ model, sampler: 'dpmpp-2m', steps, shape: SHAPE, initialNoise: init, ...(guidance ? { guidance } : {}) });
      const v = (await x.data()) as Float32Array;
      x.dispose();
      return v;
    };
    const guided = await run(gaussianModel(DATA, AB, 'epsilon', uncond), 10, { scale: w });
    const errGuided = relErr(guided, await run(gaussianModel(target, AB), 10));
    const moved = rms(guided, await run(gaussianModel(DATA, AB), 10));
    const err10 = rms(guided, exact);
    const err40 = rms(await run(gaussianModel(DATA, AB, 'epsilon', uncond), 40, { scale: w }), exact);
    console.log(
      `${name}: guided vs the target's unguided run ${errGuided.toExponential(2)}; rms vs exact ${err10.toExponential(2)} (10 steps), ${err40.toExponential(2)} (40); guidance moved the sample by ${moved.toFixed(2)}`,
    );
    expect(errGuided).toBeLessThan(1e-5);
    expect(moved).toBeGreaterThan(0.5); // guidance changed the result: (w - 1) |mu - mu_u| is 0.3..1.2 per dimension
    // seen on cpu: 0.086 and 0.0042; the solver converges (13-20x over 4x the steps on three seeds)
    expect(err10).toBeLessThan(0.15);
    expect(err40).toBeLessThan(Math.min(err10 / 5, 1e-2));
    init.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('across backends', () => {
  it('the same seed gives bit-identical noise and matching samples on cpu, wasm (and webgpu where present)', () => {
    const cpu = seen.get('cpu');
    expect(cpu, 'the cpu run must have happened').toBeDefined();
    const others = [...seen.entries()].filter(([k]) => k !== 'cpu');
    expect(others.length, 'at least one other backend (wasm) ran').toBeGreaterThan(0);
    for (const [name, r] of others) {
      expect(Array.from(r.noise), name).toEqual(Array.from(cpu!.noise));
      const e = relErr(r.ddpm, cpu!.ddpm);
      console.log(`ddpm 6 steps, ${name} vs cpu: relative difference ${e.toExponential(2)}`);
      expect(e, name).toBeLessThan(1e-5);
    }
  });
});
