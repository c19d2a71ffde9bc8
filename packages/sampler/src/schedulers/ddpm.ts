/**
 * DDPM ancestral sampling (Ho et al. 2020, eq. 6-7) with the posterior variance ("fixed_small"):
 *   x_prev = c0 x0_hat + ct x_t + sqrt(beta~) z,   beta~ = (1 - abar_prev)/(1 - abar_t) * beta_t,
 * where beta_t = 1 - abar_t/abar_prev also covers skipped timesteps when steps < trainSteps (as in
 * diffusers' DDPMScheduler with custom timesteps). The last step lands on abar = 1 with zero variance.
 */
import * as tf from '@tensorflow/tfjs-core';
import { predictionsFrom } from '../prediction.js';
import { advance, alphaBarAt, checkStep, initialState, requireRng, type Scheduler } from '../scheduler.js';

export const ddpm: Scheduler = Object.freeze<Scheduler>({
  name: 'ddpm',
  order: 1,
  solverOrder: 1,
  setTimesteps: (config, steps) => initialState('ddpm', config, steps),
  scaleModelInput: (_state, sample) => tf.clone(sample),
  step(state, modelOutput, timestep, sample, rng) {
    checkStep(state, modelOutput, timestep, sample);
    const i = state.stepIndex;
    const abT = alphaBarAt(state, i);
    const abPrev = alphaBarAt(state, i + 1);
    const alphaT = abT / abPrev;
    const betaT = 1 - alphaT;
    const variance = ((1 - abPrev) / (1 - abT)) * betaT;
    // Noise is drawn only where it is used (not on the last step), so a seed's stream is well defined.
    const noiseRng = variance > 0 ? requireRng(rng, 'ddpm') : undefined;
    const [prevSample, predOriginalSample] = tf.tidy(() => {
      let { x0 } = predictionsFrom(state.prediction, modelOutput, sample, abT);
      if (state.clipSample != null) x0 = tf.clipByValue(x0, -state.clipSample, state.clipSample);
      const c0 = (Math.sqrt(abPrev) * betaT) / (1 - abT);
      const ct = (Math.sqrt(alphaT) * (1 - abPrev)) / (1 - abT);
      let prev = tf.add(tf.mul(x0, c0), tf.mul(sample, ct));
      if (noiseRng) prev = tf.add(prev, tf.mul(noiseRng.randn(sample.shape), Math.sqrt(Math.max(variance, 1e-20))));
      return [prev, x0];
    });
    return { prevSample, predOriginalSample, state: advance(state) };
  },
});
