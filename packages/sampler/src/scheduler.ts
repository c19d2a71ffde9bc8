/**
 * The scheduler protocol: diffusers' vocabulary (`setTimesteps`, `step`, `scaleModelInput`, `order`,
 * `timesteps`, `initNoiseSigma`, `prevSample`, `predOriginalSample`) with explicit, immutable state.
 *
 *   let state = ddim.setTimesteps({prediction: 'epsilon'}, 20);
 *   let x = tf.mul(noise, state.initNoiseSigma);
 *   for (const t of state.timesteps) {
 *     const out = model(ddim.scaleModelInput(state, x, t), t);
 *     const r = ddim.step(state, out, t, x, rng);
 *     disposeState(state); x = r.prevSample; state = r.state;   // (and dispose out, the old x)
 *   }
 *
 * `step` never mutates or disposes its arguments; every tensor it returns (prevSample,
 * predOriginalSample, and any history inside the new state) is new and owned by the caller, so an old
 * state stays valid for replay until `disposeState` frees it.
 */

import { assertFloat, check, fmtShape, type Rng } from '@t2md/core';
import type * as tf from '@tensorflow/tfjs-core';
import { type PredictionType, resolvePrediction } from './prediction.js';
import { alphasCumprod, resolveSchedule, type ScheduleConfig, trailingTimesteps } from './schedule.js';

export const SAMPLER_NAMES = ['ddpm', 'ddim', 'dpmpp-2m', 'euler'] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];

/** What a scheduler is configured with; all fields optional. */
export interface SchedulerConfig {
  /** Training noise schedule; defaults to {@link DEFAULT_SCHEDULE}. */
  readonly schedule?: Partial<ScheduleConfig>;
  /** What the model predicts; default `'epsilon'`. */
  readonly prediction?: PredictionType;
  /** DDIM only: 0 (default) is deterministic DDIM, 1 matches DDPM's posterior variance. */
  readonly eta?: number;
  /** DDPM and DDIM only: clip the predicted clean sample to [-clipSample, clipSample]. Off by default. */
  readonly clipSample?: number;
}

/** The full, immutable state of a sampling run after `stepIndex` steps. */
export interface SchedulerState {
  readonly sampler: SamplerName;
  readonly schedule: ScheduleConfig;
  readonly prediction: PredictionType;
  /** alpha-bar for every training timestep, `[trainSteps]` (shared, never written). */
  readonly alphasCumprod: Float64Array;
  /** The training timesteps the model is called at, largest first ("trailing" spacing). */
  readonly timesteps: readonly number[];
  /** How many steps have been taken; `timesteps[stepIndex]` is the next timestep to pass to `step`. */
  readonly stepIndex: number;
  /** The standard deviation of the initial noise in this scheduler's sample space (1 except Euler). */
  readonly initNoiseSigma: number;
  readonly eta: number;
  readonly clipSample: number | null;
  /** Euler: sigma = sqrt((1 - alpha-bar)/alpha-bar) per timestep, then a final 0. Empty otherwise. */
  readonly sigmas: readonly number[];
  /** DPM-Solver++: data predictions of earlier steps, newest first, owned by this state. */
  readonly history: readonly tf.Tensor[];
}

export interface StepResult {
  /** The sample at the next timestep (at the end: the clean sample). */
  readonly prevSample: tf.Tensor;
  /** This step's estimate of the clean sample x_0. */
  readonly predOriginalSample: tf.Tensor;
  readonly state: SchedulerState;
}

export interface Scheduler {
  readonly name: SamplerName;
  /** Model evaluations per step, as in diffusers (1 for all four here). */
  readonly order: number;
  /** Order of the ODE/SDE solver (2 for DPM-Solver++(2M), 1 otherwise). */
  readonly solverOrder: number;
  /** Starts a run of `steps` steps; throws InputError when steps is not an integer in [1, trainSteps]. */
  setTimesteps(config: SchedulerConfig, steps: number): SchedulerState;
  /** The model's input for `sample` at `timestep` (a new tensor; Euler divides by sqrt(sigma^2 + 1)). */
  scaleModelInput(state: SchedulerState, sample: tf.Tensor, timestep: number): tf.Tensor;
  /** One step from `timestep` to the next; `rng` is needed by stochastic steps (DDPM, DDIM with eta > 0). */
  step(state: SchedulerState, modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor, rng?: Rng): StepResult;
}

/** Frees the tensors a state owns (its history). Safe to call twice. */
export function disposeState(state: SchedulerState): void {
  for (const t of state.history) t.dispose();
}

/** The state every scheduler starts from; `extra` overrides fields. */
export function initialState(
  sampler: SamplerName,
  config: SchedulerConfig,
  steps: number,
  extra: Partial<SchedulerState> = {},
): SchedulerState {
  check(config != null && typeof config === 'object', `scheduler config must be an object, got ${String(config)}.`);
  const schedule = resolveSchedule(config.schedule);
  const prediction = resolvePrediction(config.prediction);
  const eta = config.eta ?? 0;
  check(typeof eta === 'number' && eta >= 0 && eta <= 1, () => `eta must be a number in [0, 1], got ${String(eta)}.`);
  check(eta === 0 || sampler === 'ddim', `eta applies to the 'ddim' sampler only; leave it out for '${sampler}'.`);
  const clip = config.clipSample ?? null;
  check(clip == null || (typeof clip === 'number' && clip > 0), () => `clipSample must be a positive number, got ${String(clip)}.`);
  check(
    clip == null || sampler === 'ddpm' || sampler === 'ddim',
    `clipSample applies to 'ddpm' and 'ddim' only; leave it out for '${sampler}'.`,
  );
  return Object.freeze({
    sampler,
    schedule,
    prediction,
    alphasCumprod: alphasCumprod(schedule),
    timesteps: Object.freeze(trailingTimesteps(schedule.trainSteps, steps)),
    stepIndex: 0,
    initNoiseSigma: 1,
    eta,
    clipSample: clip,
    sigmas: Object.freeze([]),
    history: Object.freeze([]),
    ...extra,
  });
}

/** The state after one more step. */
export function advance(state: SchedulerState, history: readonly tf.Tensor[] = []): SchedulerState {
  return Object.freeze({ ...state, stepIndex: state.stepIndex + 1, history: Object.freeze([...history]) });
}

/** alpha-bar at `timesteps[i]`, and 1 past the end (the clean sample: diffusers' `set_alpha_to_one`). */
export function alphaBarAt(state: SchedulerState, i: number): number {
  return i >= state.timesteps.length ? 1 : state.alphasCumprod[state.timesteps[i]];
}

/**
 * Checks a `step` call: the timestep must be the state's current one (guarding against loop indices
 * passed as timesteps, as diffusers does), and the model output must be float32 and shaped like the sample.
 */
export function checkStep(state: SchedulerState, modelOutput: tf.Tensor, timestep: number, sample: tf.Tensor): void {
  const i = state.stepIndex;
  const n = state.timesteps.length;
  check(i < n, () => `this scheduler state has already taken all ${n} steps; call setTimesteps again to start a new run.`);
  const want = state.timesteps[i];
  if (timestep !== want) {
    const hint = timestep === i && n > 1 ? ' (it looks like a loop index: pass the value from state.timesteps, not its position)' : '';
    check(false, `timestep must be the scheduler's current timestep state.timesteps[${i}] = ${want}, got ${String(timestep)}${hint}.`);
  }
  assertFloat('sample', sample);
  assertFloat('modelOutput', modelOutput);
  check(
    modelOutput.shape.length === sample.shape.length && modelOutput.shape.every((d, k) => d === sample.shape[k]),
    () => `modelOutput must have the sample's shape ${fmtShape(sample.shape)}, got ${fmtShape(modelOutput.shape)}.`,
  );
}

/** Checks that a stochastic step was given a generator. */
export function requireRng(rng: Rng | undefined, sampler: SamplerName): Rng {
  check(
    rng != null && typeof rng.randn === 'function',
    `the '${sampler}' step adds noise: pass an Rng from @t2md/core as its last argument.`,
  );
  return rng;
}
