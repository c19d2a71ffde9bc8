/**
 * DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", algorithm 2), data prediction, multistep, in
 * lambda = log(alpha/sigma) with alpha = sqrt(abar), sigma = sqrt(1 - abar), h = lambda_t - lambda_s:
 *   first order (first step, and the last):  x_t = (sigma_t/sigma_s) x_s - alpha_t (e^-h - 1) D0
 *   second order, r0 = h_prev/h:             ... - 0.5 alpha_t (e^-h - 1) (D0 - D_prev)/r0
 * with D0 = x0_hat at this step (diffusers' `midpoint` solver type). The last step goes to sigma = 0
 * (diffusers' `final_sigmas_type='zero'`, which forces a lower-order final step): it returns x0_hat.
 */
import * as tf from '@tensorflow/tfjs-core';
import { predictionsFrom } from '../prediction.js';
import { advance, alphaBarAt, checkStep, initialState, type Scheduler, type SchedulerState } from '../scheduler.js';

/** lambda = log(alpha/sigma); +Infinity at abar = 1. */
function lambdaOf(abar: number): number {
  return 0.5 * (Math.log(abar) - Math.log(1 - abar));
}

export const dpmpp2m: Scheduler = Object.freeze<Scheduler>({
  name: 'dpmpp-2m',
  order: 1,
  solverOrder: 2,
  setTimesteps: (config, steps) => initialState('dpmpp-2m', config, steps),
  scaleModelInput: (_state, sample) => tf.clone(sample),
  step(state: SchedulerState, modelOutput, timestep, sample) {
    checkStep(state, modelOutput, timestep, sample);
    const i = state.stepIndex;
    const last = i === state.timesteps.length - 1;
    const abS = alphaBarAt(state, i);
    const abT = alphaBarAt(state, i + 1);
    const [alphaT, sigmaT, sigmaS] = [Math.sqrt(abT), Math.sqrt(1 - abT), Math.sqrt(1 - abS)];
    const h = lambdaOf(abT) - lambdaOf(abS);
    const phi = -alphaT * Math.expm1(-h); // alpha_t (1 - e^-h); = 1 at sigma_t = 0
    const secondOrder = state.history.length > 0 && !last;
    const [prevSample, predOriginalSample, kept] = tf.tidy(() => {
      const { x0 } = predictionsFrom(state.prediction, modelOutput, sample, abS);
      let prev = tf.add(tf.mul(sample, sigmaT / sigmaS), tf.mul(x0, phi));
      if (secondOrder) {
        const r0 = (lambdaOf(abS) - lambdaOf(alphaBarAt(state, i - 1))) / h;
        const d1 = tf.div(tf.sub(x0, state.history[0]), r0);
        prev = tf.add(prev, tf.mul(d1, 0.5 * phi));
      }
      return [prev, x0, tf.clone(x0)];
    });
    return { prevSample, predOriginalSample, state: advance(state, [kept]) };
  },
});
