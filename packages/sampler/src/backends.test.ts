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

    // A small deterministic run with guidance: DPM-Solver++(2M), 10 steps, against the exact solution.
    const init = new Rng(9).randn(SHAPE);
    const x = await sample({
      model: gaussianModel(DATA, AB, 'epsilon', DATA),
      sampler: 'dpmpp-2m',
      steps: 10,
      shape: SHAPE,
      initialNoise: init,
      guidance: { scale: 2 },
    });
    const err = rms(await x.data(), exactOdeSolution(DATA, AB[999], await init.data()));
    console.log(`${name}: dpmpp-2m 10 steps rms error vs exact ${err.toExponential(2)}`);
    expect(err).toBeLessThan(0.1);
    tf.dispose([x, init]);
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
