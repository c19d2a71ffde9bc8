/**
 * DDIM (Song et al. 2021, eq. 12):
 *   x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps_hat + sigma z,
 *   sigma  = eta sqrt((1 - abar_prev)/(1 - abar_t)) sqrt(1 - abar_t/abar_prev).
 * eta = 0 (default) is deterministic: a first-order solver of the probability-flow ODE. The step after
 * the last timestep uses abar = 1 (diffusers' `set_alpha_to_one`), so the run ends on x0_hat.
 */
import * as tf from '@tensorflow/tfjs-core';
import { predictionsFrom } from '../prediction.js';
import { advance, alphaBarAt, checkStep, initialState, requireRng, type Scheduler } from '../scheduler.js';

export const ddim: Scheduler = Object.freeze<Scheduler>({
  name: 'ddim',
  order: 1,
  solverOrder: 1,
  setTimesteps: (config, steps) => initialState('ddim', config, steps),
  scaleModelInput: (_state, sample) => tf.clone(sample),
  step(state, modelOutput, timestep, sample, rng) {
    checkStep(state, modelOutput, timestep, sample);
    const i = state.stepIndex;
    const abT = alphaBarAt(state, i);
    const abPrev = alphaBarAt(state, i + 1);
    const sigma = state.eta * Math.sqrt((1 - abPrev) / (1 - abT)) * Math.sqrt(1 - abT / abPrev);
    const noiseRng = sigma > 0 ? requireRng(rng, 'ddim') : undefined;
    const [prevSample, predOriginalSample] = tf.tidy(() => {
      let { x0, eps } = predictionsFrom(state.prediction, modelOutput, sample, abT);
      if (state.clipSample != null) {
        x0 = tf.clipByValue(x0, -state.clipSample, state.clipSample);
        // Re-derive eps from the clipped x0 so the step stays on a consistent trajectory (as diffusers does).
        eps = tf.div(tf.sub(sample, tf.mul(x0, Math.sqrt(abT))), Math.sqrt(1 - abT));
      }
      const dir = Math.sqrt(Math.max(1 - abPrev - sigma * sigma, 0));
      let prev = tf.add(tf.mul(x0, Math.sqrt(abPrev)), tf.mul(eps, dir));
      if (noiseRng) prev = tf.add(prev, tf.mul(noiseRng.randn(sample.shape), sigma));
      return [prev, x0];
    });
    return { prevSample, predOriginalSample, state: advance(state) };
  },
});
