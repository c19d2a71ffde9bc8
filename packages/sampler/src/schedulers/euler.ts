/**
 * Euler's method on the probability-flow ODE in sigma space (Karras et al. 2022, "EDM", eq. 4 with
 * sigma(t) = t; diffusers' EulerDiscreteScheduler without churn). The sample lives in the
 * variance-exploding space x_ve = x_t / sqrt(abar) = x_t sqrt(sigma^2 + 1), sigma = sqrt((1 - abar)/abar):
 *   d = (x_ve - x0_hat)/sigma,   x_ve' = x_ve + (sigma_next - sigma) d,
 * starting from noise of standard deviation sqrt(sigma_max^2 + 1) (`initNoiseSigma`) and ending at
 * sigma = 0, where x_ve is the clean sample. The model sees `scaleModelInput` = x_ve / sqrt(sigma^2 + 1).
 */
import * as tf from '@tensorflow/tfjs-core';
import { predictionsFrom } from '../prediction.js';
import { advance, alphaBarAt, checkStep, initialState, type Scheduler, type SchedulerState } from '../scheduler.js';

function currentSigma(state: SchedulerState): number {
  return state.sigmas[Math.min(state.stepIndex, state.sigmas.length - 1)];
}

export const euler: Scheduler = Object.freeze<Scheduler>({
  name: 'euler',
  order: 1,
  solverOrder: 1,
  setTimesteps(config, steps) {
    const base = initialState('euler', config, steps);
    const sigmas = base.timesteps.map((t) => Math.sqrt((1 - base.alphasCumprod[t]) / base.alphasCumprod[t]));
    sigmas.push(0);
    return Object.freeze({ ...base, sigmas: Object.freeze(sigmas), initNoiseSigma: Math.sqrt(sigmas[0] ** 2 + 1) });
  },
  scaleModelInput: (state, sample) => tf.div(sample, Math.sqrt(currentSigma(state) ** 2 + 1)),
  step(state, modelOutput, timestep, sample) {
    checkStep(state, modelOutput, timestep, sample);
    const i = state.stepIndex;
    const sigma = state.sigmas[i];
    const sigmaNext = state.sigmas[i + 1];
    const [prevSample, predOriginalSample] = tf.tidy(() => {
      const xVp = tf.div(sample, Math.sqrt(sigma * sigma + 1));
      const { x0, eps } = predictionsFrom(state.prediction, modelOutput, xVp, alphaBarAt(state, i));
      // d = (x_ve - x0)/sigma equals eps exactly; use it directly to avoid cancellation at small sigma.
      return [tf.add(sample, tf.mul(eps, sigmaNext - sigma)), x0];
    });
    return { prevSample, predOriginalSample, state: advance(state) };
  },
});
