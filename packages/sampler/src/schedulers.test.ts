import { InputError, Rng } from '@t2md/core';
import { relErr, useBackend } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type GaussianData, gaussianModel } from './gaussian-oracle.js';
import { alphasCumprod, trailingTimesteps } from './schedule.js';
import { disposeState, SAMPLER_NAMES, type SamplerName, type SchedulerState } from './scheduler.js';
import { ddim, ddpm, dpmpp2m, euler, getScheduler } from './schedulers/index.js';

const DATA: GaussianData = { mu: [1.5, -0.7, 0.3], s: [0.5, 2, 1] };

/** Closed-form E[eps | x_t] in float64, per element (samples [N, D] flat). */
function epsExact(x: Float64Array, abar: number, d: GaussianData): Float64Array {
  return x.map((v, i) => {
    const mu = d.mu[i % d.mu.length];
    const s = d.s[i % d.s.length];
    return (Math.sqrt(1 - abar) * (v - Math.sqrt(abar) * mu)) / (abar * s * s + 1 - abar);
  });
}

/**
 * Plain-loop float64 references, written in diffusers' own variables (VE sigmas for Euler and
 * DPM-Solver++, as its schedulers hold them), independent of the tensor code under test.
 */
function referenceSample(sampler: SamplerName, steps: number, noise: Float64Array, d: GaussianData, rng?: Rng): Float64Array {
  const ab = alphasCumprod();
  const ts = trailingTimesteps(1000, steps);
  const abAt = (i: number) => (i < ts.length ? ab[ts[i]] : 1);
  const sig = (i: number) => Math.sqrt((1 - abAt(i)) / abAt(i)); // VE sigma, 0 at the end
  let x = Float64Array.from(noise);
  if (sampler === 'euler') x = x.map((v) => v * Math.sqrt(sig(0) ** 2 + 1));
  let prevD0: Float64Array | undefined;
  for (let i = 0; i < steps; i++) {
    const [a, aPrev] = [abAt(i), abAt(i + 1)];
    if (sampler === 'euler') {
      const s = sig(i);
      const eps = epsExact(
        x.map((v) => v / Math.sqrt(s * s + 1)),
        a,
        d,
      );
      const x0 = x.map((v, k) => v - s * eps[k]);
      x = x.map((v, k) => v + ((v - x0[k]) / s) * (sig(i + 1) - s));
      continue;
    }
    const eps = epsExact(x, a, d);
    const x0 = x.map((v, k) => (v - Math.sqrt(1 - a) * eps[k]) / Math.sqrt(a));
    if (sampler === 'ddim') {
      x = x0.map((v, k) => Math.sqrt(aPrev) * v + Math.sqrt(1 - aPrev) * eps[k]);
    } else if (sampler === 'ddpm') {
      const beta = 1 - a / aPrev;
      const mean = x0.map((v, k) => ((Math.sqrt(aPrev) * beta) / (1 - a)) * v + ((Math.sqrt(1 - beta) * (1 - aPrev)) / (1 - a)) * x[k]);
      const variance = ((1 - aPrev) / (1 - a)) * beta;
      const z = variance > 0 ? rng!.normals(x.length) : undefined;
      x = mean.map((m, k) => m + (z ? Math.sqrt(variance) * z[k] : 0));
    } else {
      const alphaSigma = (s: number) => [1 / Math.sqrt(s * s + 1), s / Math.sqrt(s * s + 1)];
      const [alphaT, sigmaT] = alphaSigma(sig(i + 1));
      const [alphaS0, sigmaS0] = alphaSigma(sig(i));
      const lambda = (al: number, si: number) => Math.log(al) - Math.log(si);
      const h = lambda(alphaT, sigmaT) - lambda(alphaS0, sigmaS0);
      const lowerOrder = prevD0 == null || i === steps - 1;
      if (lowerOrder) {
        x = x.map((v, k) => (sigmaT / sigmaS0) * v - alphaT * (Math.exp(-h) - 1) * x0[k]);
      } else {
        const [alphaS1, sigmaS1] = alphaSigma(sig(i - 1));
        const r0 = (lambda(alphaS0, sigmaS0) - lambda(alphaS1, sigmaS1)) / h;
        const m1 = prevD0!;
        x = x.map((v, k) => {
          const d1 = (x0[k] - m1[k]) / r0;
          return (sigmaT / sigmaS0) * v - alphaT * (Math.exp(-h) - 1) * x0[k] - 0.5 * alphaT * (Math.exp(-h) - 1) * d1;
        });
      }
      prevD0 = x0;
    }
  }
  return x;
}

/** Runs a scheduler by hand through its public protocol. */
async function runScheduler(sampler: SamplerName, steps: number, noise: tf.Tensor, rng?: Rng) {
  const s = getScheduler(sampler);
  const model = gaussianModel(DATA, alphasCumprod());
  let state = s.setTimesteps({}, steps);
  let x = tf.mul(noise, state.initNoiseSigma);
  const states: SchedulerState[] = [state];
  for (const t of state.timesteps) {
    const xIn = s.scaleModelInput(state, x, t);
    const tt = tf.fill([x.shape[0]], t, 'int32');
    const out = await model(xIn, tt, { step: state.stepIndex, guided: false });
    const r = s.step(state, out, t, x, rng);
    tf.dispose([xIn, tt, out, x, r.predOriginalSample]);
    x = r.prevSample;
    state = r.state;
    states.push(state);
  }
  for (const st of states) disposeState(st);
  return x;
}

describe('schedulers (cpu)', () => {
  it('match plain float64 references of diffusers formulas, every sampler, without leaking', async (ctx) => {
    await useBackend('cpu', ctx);
    const shape = [16, 3];
    const worst: string[] = [];
    for (const sampler of SAMPLER_NAMES) {
      let w = 0;
      for (const steps of [1, 2, 7, 25]) {
        const noise = new Rng(11).randn(shape);
        const ref = referenceSample(sampler, steps, Float64Array.from(await noise.data()), DATA, new Rng(99));
        const before = tf.memory().numTensors;
        const got = await runScheduler(sampler, steps, noise, new Rng(99));
        expect(tf.memory().numTensors, 'only the result is left').toBe(before + 1);
        const err = relErr(await got.data(), ref);
        // A 1- or 2-step run ends on x0 = (x - sigma eps)/alpha from t = 999, where 1/alpha = 157
        // magnifies float32 rounding of the model output; longer runs agree to float32 precision.
        expect(err, `${sampler}, ${steps} steps`).toBeLessThan(steps <= 2 ? 1e-4 : 2e-6);
        w = Math.max(w, err);
        tf.dispose([noise, got]);
      }
      worst.push(`${sampler} ${w.toExponential(1)}`);
    }
    console.log(`schedulers vs float64 references, worst relative error: ${worst.join(', ')}`);
  });

  it('have diffusers attributes: order 1, DPM-Solver++ of solver order 2, first timestep T - 1', () => {
    for (const s of [ddpm, ddim, dpmpp2m, euler]) {
      expect(s.order).toBe(1);
      const st = s.setTimesteps({}, 20);
      expect(st.timesteps[0]).toBe(999);
      expect(st.timesteps.length).toBe(20);
    }
    expect(dpmpp2m.solverOrder).toBe(2);
    const e = euler.setTimesteps({}, 4);
    expect(e.sigmas.length).toBe(5);
    expect(e.sigmas[4]).toBe(0);
    expect(e.initNoiseSigma).toBeCloseTo(Math.sqrt(e.sigmas[0] ** 2 + 1), 10);
  });

  it('keep state explicit and immutable: stepping an old state again replays the same step', async (ctx) => {
    await useBackend('cpu', ctx);
    const model = gaussianModel(DATA, alphasCumprod());
    const s0 = dpmpp2m.setTimesteps({}, 5);
    expect(Object.isFrozen(s0)).toBe(true);
    const x = new Rng(3).randn([4, 3]);
    const tt = tf.fill([4], s0.timesteps[0], 'int32');
    const out0 = await model(x, tt, { step: 0, guided: false });
    const a = dpmpp2m.step(s0, out0, s0.timesteps[0], x);
    expect(s0.stepIndex).toBe(0);
    expect(s0.history.length).toBe(0);
    expect(a.state.stepIndex).toBe(1);
    expect(a.state.history.length).toBe(1);
    // Second step, twice from the same state: identical results, and the first state's history is untouched.
    const t1 = a.state.timesteps[1];
    const tt1 = tf.fill([4], t1, 'int32');
    const out1 = await model(a.prevSample, tt1, { step: 1, guided: false });
    const b1 = dpmpp2m.step(a.state, out1, t1, a.prevSample);
    const b2 = dpmpp2m.step(a.state, out1, t1, a.prevSample);
    expect(Array.from(await b1.prevSample.data())).toEqual(Array.from(await b2.prevSample.data()));
    expect(a.state.history[0].isDisposed).toBe(false);
    for (const r of [a, b1, b2]) {
      tf.dispose([r.prevSample, r.predOriginalSample]);
      disposeState(r.state);
    }
    tf.dispose([x, tt, tt1, out0, out1]);
  });

  it('reject loop indices passed as timesteps, a finished state, wrong shapes and a missing Rng', async (ctx) => {
    await useBackend('cpu', ctx);
    const x = tf.zeros([2, 3]);
    const st = ddim.setTimesteps({}, 10);
    expect(() => ddim.step(st, x, 0, x)).toThrow(InputError);
    expect(() => ddim.step(st, x, 0, x)).toThrow(
      /timestep must be the scheduler's current timestep state.timesteps\[0\] = 999, got 0 \(it looks like a loop index/,
    );
    expect(() => ddim.step(st, x, 899, x)).toThrow(/state.timesteps\[0\] = 999, got 899/);
    const bad = tf.zeros([2, 4]);
    expect(() => ddim.step(st, bad, 999, x)).toThrow(/modelOutput must have the sample's shape \[2, 3\], got \[2, 4\]/);
    const one = ddim.setTimesteps({}, 1);
    const r = ddim.step(one, x, 999, x);
    expect(() => ddim.step(r.state, x, 999, r.prevSample)).toThrow(/already taken all 1 steps/);
    tf.dispose([r.prevSample, r.predOriginalSample]);
    const p = ddpm.setTimesteps({}, 10);
    expect(() => ddpm.step(p, x, 999, x)).toThrow(/the 'ddpm' step adds noise: pass an Rng/);
    const e = ddim.setTimesteps({ eta: 1 }, 10);
    expect(() => ddim.step(e, x, 999, x)).toThrow(/the 'ddim' step adds noise/);
    expect(() => dpmpp2m.setTimesteps({ eta: 0.5 }, 10)).toThrow(/eta applies to the 'ddim' sampler only/);
    expect(() => ddim.setTimesteps({ eta: 2 }, 10)).toThrow(/eta must be a number in \[0, 1\]/);
    expect(() => euler.setTimesteps({ clipSample: 1 }, 10)).toThrow(/clipSample applies to 'ddpm' and 'ddim' only/);
    expect(() => ddim.setTimesteps({}, 0)).toThrow(/steps must be an integer in \[1, 1000\]/);
    expect(() => getScheduler('plms')).toThrow(/sampler must be one of 'ddpm', 'ddim', 'dpmpp-2m', 'euler', got "plms"/);
    tf.dispose([x, bad]);
  });

  it('DDIM with eta = 1 takes DDPM steps (same posterior variance, same noise)', async (ctx) => {
    await useBackend('cpu', ctx);
    const noise = new Rng(5).randn([8, 3]);
    const a = await runScheduler('ddpm', 12, noise, new Rng(1));
    const s = getScheduler('ddim');
    // ddim eta=1: sigma^2 = (1 - abar_prev)/(1 - abar) (1 - abar/abar_prev), the DDPM posterior variance.
    const model = gaussianModel(DATA, alphasCumprod());
    let state = s.setTimesteps({ eta: 1 }, 12);
    let x = tf.clone(noise);
    const rng = new Rng(1);
    for (const t of state.timesteps) {
      const tt = tf.fill([8], t, 'int32');
      const out = await model(x, tt, { step: 0, guided: false });
      const r = s.step(state, out, t, x, rng);
      tf.dispose([tt, out, x, r.predOriginalSample]);
      x = r.prevSample;
      state = r.state;
    }
    expect(relErr(await x.data(), await a.data())).toBeLessThan(1e-5);
    tf.dispose([noise, a, x]);
  });
});
