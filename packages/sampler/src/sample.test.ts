import { InputError, Rng } from '@t2md/core';
import { relErr, useBackend } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { columnStats, exactOdeSolution, type GaussianData, gaussianModel, rms } from './gaussian-oracle.js';
import { type ModelFn, type SampleOptions, sample } from './sample.js';
import { alphasCumprod } from './schedule.js';
import { SAMPLER_NAMES } from './scheduler.js';

const AB = alphasCumprod();
const AB_T = AB[999]; // the first model call is at t = 999
/** Moderate spreads (s between 0.5 and 1.5, like normalised latents); see the README on very small s. */
const DATA: GaussianData = { mu: [1.5, -0.7, 0.3, 0], s: [0.5, 0.7, 1, 1.5] };

/** Runs `sample` and checks that the result is the only tensor left behind. */
async function sampleNoLeak(opts: SampleOptions): Promise<tf.Tensor> {
  const before = tf.memory().numTensors;
  const x = await sample(opts);
  expect(tf.memory().numTensors, 'sample() leaves only its result').toBe(before + 1);
  return x;
}

describe('sample() on Gaussian data (exact denoiser, exact probability-flow ODE)', () => {
  it('DDIM and Euler converge at first order, DPM-Solver++(2M) at second', async (ctx) => {
    await useBackend('cpu', ctx);
    const shape = [256, 4];
    const noise = new Rng(2024).randn(shape);
    const exact = exactOdeSolution(DATA, AB_T, await noise.data());
    const errs: Record<string, number[]> = {};
    for (const sampler of ['ddim', 'euler', 'dpmpp-2m'] as const) {
      errs[sampler] = [];
      for (const steps of [10, 20, 40]) {
        const x = await sampleNoLeak({ model: gaussianModel(DATA, AB), sampler, steps, shape, initialNoise: noise });
        errs[sampler].push(rms(await x.data(), exact));
        x.dispose();
      }
      const [e10, e20, e40] = errs[sampler];
      console.log(
        `${sampler}: rms error vs exact ODE at 10/20/40 steps ${[e10, e20, e40].map((e) => e.toExponential(2)).join(' / ')}, ` +
          `ratios ${(e10 / e20).toFixed(2)}, ${(e20 / e40).toFixed(2)}`,
      );
    }
    for (const sampler of ['ddim', 'euler']) {
      const [e10, e20, e40] = errs[sampler];
      // first order: halving the step halves the error
      for (const r of [e10 / e20, e20 / e40]) {
        expect(r, sampler).toBeGreaterThan(1.6);
        expect(r, sampler).toBeLessThan(2.4);
      }
    }
    const [d10, d20] = errs['dpmpp-2m'];
    expect(d10 / d20, 'DPM-Solver++(2M) error ratio 10 -> 20 steps').toBeGreaterThanOrEqual(3);
    expect(d20, 'DPM-Solver++(2M) beats DDIM at 20 steps').toBeLessThan(errs.ddim[1] / 5);
    noise.dispose();
  });

  it('every deterministic sampler reaches the exact solution with many steps, for every prediction type', async (ctx) => {
    await useBackend('cpu', ctx);
    const shape = [64, 4];
    const noise = new Rng(7).randn(shape);
    const exact = exactOdeSolution(DATA, AB_T, await noise.data());
    for (const sampler of ['ddim', 'euler', 'dpmpp-2m'] as const) {
      const byPrediction: Float32Array[] = [];
      for (const prediction of ['epsilon', 'v', 'sample'] as const) {
        const x = await sampleNoLeak({
          model: gaussianModel(DATA, AB, prediction),
          sampler,
          steps: 100,
          shape,
          initialNoise: noise,
          prediction,
        });
        const v = (await x.data()) as Float32Array;
        byPrediction.push(v);
        const bound = sampler === 'dpmpp-2m' ? 2e-3 : 2.5e-2;
        expect(rms(v, exact), `${sampler} ${prediction}, 100 steps`).toBeLessThan(bound);
        x.dispose();
      }
      // The same trajectory whatever the model predicts (conversions are exact up to rounding).
      expect(relErr(byPrediction[1], byPrediction[0]), `${sampler}: v vs epsilon`).toBeLessThan(1e-4);
      expect(relErr(byPrediction[2], byPrediction[0]), `${sampler}: sample vs epsilon`).toBeLessThan(1e-4);
    }
    noise.dispose();
  });

  it("DDPM's 1000-step samples match the data's mean and standard deviation", async (ctx) => {
    await useBackend('cpu', ctx);
    const data: GaussianData = { mu: [1.5, -0.7], s: [0.5, 2] };
    const n = 2000;
    const t0 = performance.now();
    const x = await sampleNoLeak({ model: gaussianModel(data, AB), sampler: 'ddpm', steps: 1000, shape: [n, 2], seed: 31 });
    const { mean, std } = columnStats(await x.data(), 2);
    x.dispose();
    console.log(
      `ddpm 1000 steps, ${n} samples (${((performance.now() - t0) / 1000).toFixed(1)} s): mean ${mean.map((m) => m.toFixed(3))} ` +
        `(data ${data.mu}), std ${std.map((s) => s.toFixed(3))} (data ${data.s})`,
    );
    for (let k = 0; k < 2; k++) {
      // 4 standard errors of the sample mean and std (s/sqrt(n), s/sqrt(2n))
      expect(Math.abs(mean[k] - data.mu[k])).toBeLessThan((4 * data.s[k]) / Math.sqrt(n));
      expect(Math.abs(std[k] - data.s[k])).toBeLessThan((4 * data.s[k]) / Math.sqrt(2 * n));
    }
  });

  it('DDPM with 50 steps follows the exact moments of its linear-Gaussian chain (posterior variance is biased low)', async (ctx) => {
    await useBackend('cpu', ctx);
    const data: GaussianData = { mu: [1.5, -0.7], s: [0.5, 2] };
    const n = 2000;
    const x = await sampleNoLeak({ model: gaussianModel(data, AB), sampler: 'ddpm', steps: 50, shape: [n, 2], seed: 3 });
    const { mean, std } = columnStats(await x.data(), 2);
    x.dispose();
    for (let k = 0; k < 2; k++) {
      const want = ddpmChainMoments(data.mu[k], data.s[k], 50);
      console.log(
        `ddpm 50 steps, dim ${k}: mean ${mean[k].toFixed(3)} (chain ${want.mean.toFixed(3)}), std ${std[k].toFixed(3)} (chain ${want.std.toFixed(3)}, data ${data.s[k]})`,
      );
      expect(Math.abs(mean[k] - want.mean)).toBeLessThan((4 * want.std) / Math.sqrt(n));
      expect(Math.abs(std[k] - want.std)).toBeLessThan((4 * want.std) / Math.sqrt(2 * n));
    }
    // With 1000 steps the chain's moments are the data's to within 1%.
    const full = ddpmChainMoments(-0.7, 2, 1000);
    expect(Math.abs(full.mean + 0.7)).toBeLessThan(0.01);
    expect(Math.abs(full.std - 2)).toBeLessThan(0.02);
  });
});

/**
 * The exact mean and standard deviation of DDPM's output for 1-D Gaussian data N(mu, s^2) with the exact
 * denoiser: every step is affine in x plus independent noise, so moments propagate in closed form
 * (computed independently of the sampler code, from DDPM's eq. 7 in float64).
 */
function ddpmChainMoments(mu: number, s: number, steps: number): { mean: number; std: number } {
  const ts = Array.from({ length: steps }, (_, i) => Math.round(1000 - (i * 1000) / steps) - 1);
  let [m, v] = [0, 1]; // x_T ~ N(0, 1)
  for (let i = 0; i < steps; i++) {
    const a = AB[ts[i]];
    const ap = i + 1 < steps ? AB[ts[i + 1]] : 1;
    const vt = a * s * s + 1 - a;
    // x0_hat = mu + sqrt(a) s^2 (x - sqrt(a) mu) / vt = p x + q
    const p = (Math.sqrt(a) * s * s) / vt;
    const q = mu - p * Math.sqrt(a) * mu;
    const beta = 1 - a / ap;
    const c0 = (Math.sqrt(ap) * beta) / (1 - a);
    const ct = (Math.sqrt(1 - beta) * (1 - ap)) / (1 - a);
    const k = c0 * p + ct;
    m = k * m + c0 * q;
    v = k * k * v + ((1 - ap) / (1 - a)) * beta;
  }
  return { mean: m, std: Math.sqrt(v) };
}

describe('sample(): guidance, progress, determinism', () => {
  it('classifier-free guidance calls the model once per step on 2B rows (conditional first) and extrapolates', async (ctx) => {
    await useBackend('cpu', ctx);
    const cond: GaussianData = { mu: [1, -1], s: [0.8, 0.8] };
    const uncond: GaussianData = { mu: [0, 0], s: [0.8, 0.8] };
    const scale = 3;
    // eps is affine in mu with the same slope, so guided eps is the exact eps of mu_g = mu_u + w (mu_c - mu_u).
    const guidedData: GaussianData = { mu: [3, -3], s: [0.8, 0.8] };
    const shape = [8, 2];
    const calls: { batch: number; t: number }[] = [];
    const x = await sampleNoLeak({
      model: gaussianModel(cond, AB, 'epsilon', uncond, calls),
      sampler: 'dpmpp-2m',
      steps: 20,
      shape,
      seed: 4,
      guidance: { scale },
    });
    expect(calls.length).toBe(20);
    expect(calls.every((c) => c.batch === 16)).toBe(true);
    expect(calls[0].t).toBe(999);
    const ref = await sampleNoLeak({ model: gaussianModel(guidedData, AB), sampler: 'dpmpp-2m', steps: 20, shape, seed: 4 });
    expect(relErr(await x.data(), await ref.data())).toBeLessThan(1e-5);
    // scale 1: no doubling, guided = false
    const plain: { batch: number; t: number }[] = [];
    const y = await sampleNoLeak({
      model: gaussianModel(cond, AB, 'epsilon', uncond, plain),
      sampler: 'ddim',
      steps: 3,
      shape,
      guidance: { scale: 1 },
    });
    expect(plain.map((c) => c.batch)).toEqual([8, 8, 8]);
    tf.dispose([x, ref, y]);
  });

  it('reports progress with x0, and deterministic samplers end on the last clean-sample estimate', async (ctx) => {
    await useBackend('cpu', ctx);
    for (const sampler of SAMPLER_NAMES) {
      const seen: { step: number; total: number; timestep: number }[] = [];
      let lastX0: tf.Tensor | undefined;
      const x = await sample({
        model: gaussianModel(DATA, AB),
        sampler,
        steps: 5,
        shape: [3, 4],
        onStep: async ({ step, total, timestep, x0 }) => {
          seen.push({ step, total, timestep });
          expect(x0.shape).toEqual([3, 4]);
          lastX0?.dispose();
          lastX0 = tf.clone(x0);
        },
      });
      expect(seen).toEqual([999, 799, 599, 399, 199].map((timestep, i) => ({ step: i + 1, total: 5, timestep })));
      if (sampler !== 'ddpm') expect(relErr(await x.data(), await lastX0!.data()), sampler).toBeLessThan(1e-6);
      tf.dispose([x, lastX0!]);
    }
  });

  it('the same seed gives the same sample, a different seed a different one; initialNoise replaces the seed', async (ctx) => {
    await useBackend('cpu', ctx);
    const run = (seed: number, initialNoise?: tf.Tensor) =>
      sample({ model: gaussianModel(DATA, AB), sampler: 'ddpm', steps: 10, shape: [2, 4], seed, initialNoise });
    const [a, b, c] = [await run(5), await run(5), await run(6)];
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    expect(relErr(await a.data(), await c.data())).toBeGreaterThan(0.01);
    const noise = new Rng(1).randn([2, 4]);
    const d = await run(5, noise);
    expect(noise.isDisposed).toBe(false);
    expect(relErr(await a.data(), await d.data())).toBeGreaterThan(0.01);
    tf.dispose([a, b, c, d, noise]);
  });
});

describe('sample(): memory and cancellation', () => {
  it('leaks nothing and does not grow over 200-step runs of every sampler (with guidance)', async (ctx) => {
    await useBackend('cpu', ctx);
    for (const sampler of SAMPLER_NAMES) {
      const counts: number[] = [];
      const before = tf.memory().numTensors;
      const x = await sample({
        model: gaussianModel(DATA, AB, 'epsilon', DATA),
        sampler,
        steps: 200,
        shape: [4, 4],
        guidance: { scale: 4.5 },
        onStep: () => {
          counts.push(tf.memory().numTensors);
        },
      });
      expect(tf.memory().numTensors, sampler).toBe(before + 1);
      // After the multistep history fills (step 1), the live count is flat.
      expect(Math.max(...counts.slice(1)) - Math.min(...counts.slice(1)), sampler).toBe(0);
      x.dispose();
    }
  });

  it('cancelling from the progress callback stops before the next model call and frees everything', async (ctx) => {
    await useBackend('cpu', ctx);
    for (const sampler of SAMPLER_NAMES) {
      const ac = new AbortController();
      let calls = 0;
      const inner = gaussianModel(DATA, AB);
      const model: ModelFn = (x, t, info) => {
        calls++;
        return inner(x, t, info);
      };
      const before = tf.memory().numTensors;
      const run = sample({
        model,
        sampler,
        steps: 200,
        shape: [4, 4],
        signal: ac.signal,
        onStep: ({ step }) => (step === 5 ? ac.abort() : undefined),
      });
      await expect(run).rejects.toMatchObject({ name: 'AbortError' });
      expect(calls, sampler).toBe(5);
      expect(tf.memory().numTensors, sampler).toBe(before);
    }
  });

  it('cancelling from a timer (mid-run, between steps) or before the start stops at once and frees everything', async (ctx) => {
    await useBackend('cpu', ctx);
    const ac = new AbortController();
    let calls = 0;
    let callsAtAbort = -1;
    const inner = gaussianModel(DATA, AB);
    const model: ModelFn = (x, t, info) => {
      calls++;
      return inner(x, t, info);
    };
    const before = tf.memory().numTensors;
    const run = sample({ model, sampler: 'dpmpp-2m', steps: 1000, shape: [4, 4], signal: ac.signal });
    setTimeout(() => {
      callsAtAbort = calls;
      ac.abort(new Error('user cancelled'));
    }, 30);
    await expect(run).rejects.toThrow('user cancelled');
    console.log(`timer abort: ${callsAtAbort} model calls before abort(), ${calls} in all`);
    expect(callsAtAbort).toBeGreaterThan(0);
    expect(calls - callsAtAbort).toBeLessThanOrEqual(1);
    expect(calls).toBeLessThan(1000);
    expect(tf.memory().numTensors).toBe(before);

    const pre = new AbortController();
    pre.abort();
    calls = 0;
    await expect(sample({ model, sampler: 'ddim', steps: 10, shape: [2, 2], signal: pre.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(calls).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('sample(): bad input', () => {
  const model: ModelFn = (x) => tf.zerosLike(x);
  const base = { model, sampler: 'ddim' as const, steps: 10, shape: [2, 3] };

  it('rejects each bad argument with one InputError naming it', async (ctx) => {
    await useBackend('cpu', ctx);
    const cases: [Partial<SampleOptions> & Record<string, unknown>, RegExp][] = [
      [{ steps: 0 }, /steps must be an integer in \[1, 1000\] \(the schedule's trainSteps\), got 0/],
      [{ steps: 1001 }, /steps must be an integer in \[1, 1000\].*got 1001/],
      [{ steps: 20, schedule: { trainSteps: 10 } }, /steps must be an integer in \[1, 10\].*got 20/],
      [{ steps: 2.5 }, /steps must be an integer/],
      [{ sampler: 'plms' as never }, /sampler must be one of 'ddpm', 'ddim', 'dpmpp-2m', 'euler', got "plms"/],
      [{ schedule: { kind: 'sigmoid' as never } }, /schedule.kind must be one of/],
      [{ prediction: 'x0' as never }, /prediction must be one of 'epsilon', 'v', 'sample', got "x0"/],
      [{ shape: [] }, /shape must be a non-empty array of positive integers/],
      [{ shape: [2, 0] }, /shape must be a non-empty array of positive integers.*\[2,0\]/],
      [{ shape: [2, 1.5] }, /shape must be a non-empty array/],
      [{ model: 'unet' as never }, /model must be a function/],
      [{ guidance: { scale: Number.NaN } }, /guidance.scale must be a finite number/],
      [{ seed: -1 }, /seed must be an integer/],
      [{ eta: 0.5, sampler: 'euler' }, /eta applies to the 'ddim' sampler only/],
    ];
    for (const [patch, message] of cases) {
      const before = tf.memory().numTensors;
      const run = sample({ ...base, ...patch } as SampleOptions);
      await expect(run, JSON.stringify(patch)).rejects.toThrow(InputError);
      await expect(sample({ ...base, ...patch } as SampleOptions)).rejects.toThrow(message);
      expect(tf.memory().numTensors).toBe(before);
    }
    const noise = tf.zeros([3, 2]);
    await expect(sample({ ...base, initialNoise: noise })).rejects.toThrow(
      /initialNoise must have the shape \[2, 3\] given in shape, got \[3, 2\]/,
    );
    const intNoise = tf.zeros([2, 3], 'int32');
    await expect(sample({ ...base, initialNoise: intNoise })).rejects.toThrow(/initialNoise must be float32, got int32/);
    tf.dispose([noise, intNoise]);
  });

  it('rejects a model output of the wrong shape or dtype, mid-run, without leaking', async (ctx) => {
    await useBackend('cpu', ctx);
    const before = tf.memory().numTensors;
    let calls = 0;
    const late: ModelFn = (x) => (++calls < 3 ? tf.zerosLike(x) : tf.zeros([x.shape[0], 4]));
    await expect(sample({ ...base, model: late })).rejects.toThrow(
      /model output must have the shape of its input x \[2, 3\], got \[2, 4\]/,
    );
    expect(calls).toBe(3);
    // with guidance the model must answer for all 2B rows
    const halfOnly: ModelFn = (x) => tf.zeros([x.shape[0] / 2, 3]);
    await expect(sample({ ...base, model: halfOnly, guidance: { scale: 2 } })).rejects.toThrow(
      /model output must have the shape of its input x \[4, 3\] \(batch 2B: guidance doubles the batch\), got \[2, 3\]/,
    );
    const ints: ModelFn = (x) => tf.zeros(x.shape, 'int32');
    await expect(sample({ ...base, model: ints })).rejects.toThrow(/model output must be float32, got int32/);
    const notTensor = (() => [1, 2, 3]) as unknown as ModelFn;
    await expect(sample({ ...base, model: notTensor })).rejects.toThrow(/model must return a tf.Tensor, got object/);
    expect(tf.memory().numTensors).toBe(before);
    // A model that hands back its input is legal (the identity model) and must not break ownership.
    const x = await sample({ ...base, model: (v) => v, sampler: 'euler', prediction: 'sample' });
    expect(tf.memory().numTensors).toBe(before + 1);
    x.dispose();
  });
});
