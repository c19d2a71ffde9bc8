/**
 * `sample`: runs a scheduler over a model function, from seeded noise to a clean sample, with
 * classifier-free guidance batched into one model call per step, progress, cancellation, and no tensor
 * growth over a run.
 */

import { assertFloat, assertInt, assertOneOf, check, fmtShape, Rng, releaseFreeBuffers } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import type { PredictionType } from './prediction.js';
import type { ScheduleConfig } from './schedule.js';
import { disposeState, type SamplerName, type SchedulerState } from './scheduler.js';
import { getScheduler } from './schedulers/index.js';

/** What `sample` tells the model besides x and t. */
export interface ModelCallInfo {
  /** 0-based index of this step. */
  readonly step: number;
  /** True when x holds the conditional half then the unconditional half (batch 2B). */
  readonly guided: boolean;
}

/**
 * A denoiser: the prediction (epsilon, v or x_0, per `prediction`) for `x` `[N, ...]` at the integer
 * training timesteps `t` (int32 `[N]`, 0..trainSteps-1). It returns a float32 tensor shaped like `x`,
 * which `sample` takes ownership of (disposes); it must not dispose `x` or `t`. It may be async.
 */
export type ModelFn = (x: tf.Tensor, t: tf.Tensor, info: ModelCallInfo) => tf.Tensor | Promise<tf.Tensor>;

/**
 * Classifier-free guidance (Ho & Salimans 2022): out = uncond + scale (cond - uncond). With a scale
 * other than 1 the model is called once per step on a batch of 2B: rows [0, B) are the conditional
 * half and rows [B, 2B) the unconditional half, both at the same x and t. The model function closes over
 * caption features laid out the same way (e.g. `tf.concat([captions, nullCaptions])`, `[2B, Lc, Dc]`).
 * Scale 1 (or no guidance) calls the model on the B conditional rows alone.
 */
export interface GuidanceOptions {
  readonly scale: number;
}

export interface StepInfo {
  /** Steps done so far, 1..total. */
  readonly step: number;
  readonly total: number;
  /** The training timestep this step evaluated the model at. */
  readonly timestep: number;
  /** This step's estimate of the clean sample `[B, ...]`; valid only during the callback (tf.clone to keep it). */
  readonly x0: tf.Tensor;
}

export interface SampleOptions {
  readonly model: ModelFn;
  readonly sampler: SamplerName;
  readonly steps: number;
  /** The sample's shape `[B, ...]` (e.g. `[B, C, H, W]`). */
  readonly shape: readonly number[];
  /** Seeds the initial noise and any noise a stochastic sampler adds; default 0. */
  readonly seed?: number;
  /** Standard-normal starting noise shaped like `shape` (not disposed; scaled by the scheduler's initNoiseSigma). */
  readonly initialNoise?: tf.Tensor;
  readonly schedule?: Partial<ScheduleConfig>;
  readonly prediction?: PredictionType;
  readonly guidance?: GuidanceOptions;
  /** DDIM only: 0 (default) deterministic, 1 DDPM-like. */
  readonly eta?: number;
  /** DDPM and DDIM only: clip the predicted clean sample to [-clipSample, clipSample]. */
  readonly clipSample?: number;
  /** Called after every step (awaited when it returns a promise). */
  readonly onStep?: (info: StepInfo) => void | Promise<void>;
  /**
   * WebGPU: when tfjs's pool of released GPU buffers goes back to the device. tfjs keeps every buffer a
   * tensor freed, per size, for reuse, and never frees one, so a process that samples at several sizes
   * would hold every size's working set at once.
   * - `'shape'` (default): at the start of a call whose model-input shape (`shape`, its batch doubled by
   *   guidance) differs from the previous call's in this process. Memory stays bounded by the largest
   *   size's working set; repeated calls at one size reuse the pool and allocate nothing.
   * - `'always'`: at the end of every call, so between calls the device holds only live tensors (the
   *   model's weights, the result); each call allocates its working set again.
   * - `'never'`: tfjs's own behaviour (call `releaseFreeBuffers()` from `@t2md/core` yourself).
   * Off WebGPU there is no pool and this does nothing.
   */
  readonly releaseBuffers?: 'shape' | 'always' | 'never';
  /** Aborting stops the run before its next model call (or right after the current one), frees every tensor and rejects with the signal's reason (an 'AbortError' DOMException by default). */
  readonly signal?: AbortSignal;
}

/** Yields to the event loop (a macrotask), so an abort from a timer or a UI event is seen between steps. */
const nextTask: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise((resolve) => setImmediate(resolve))
    : typeof MessageChannel === 'function'
      ? () =>
          new Promise((resolve) => {
            const ch = new MessageChannel();
            ch.port1.onmessage = () => {
              ch.port1.close();
              resolve();
            };
            ch.port2.postMessage(null);
          })
      : () => new Promise((resolve) => setTimeout(resolve, 0));

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The sampling run was aborted.', 'AbortError');
}

function checkOptions(opts: SampleOptions): { shape: number[]; scale: number } {
  check(opts != null && typeof opts === 'object', 'sample() needs an options object {model, sampler, steps, shape}.');
  check(typeof opts.model === 'function', `model must be a function (x, t) => Tensor, got ${typeof opts.model}.`);
  check(
    Array.isArray(opts.shape) && opts.shape.length >= 1 && opts.shape.every((d) => Number.isInteger(d) && d >= 1),
    () => `shape must be a non-empty array of positive integers like [B, C, H, W], got ${JSON.stringify(opts.shape)}.`,
  );
  const shape = [...opts.shape];
  if (opts.seed != null) assertInt('seed', opts.seed, 0, 2 ** 53 - 1);
  if (opts.initialNoise != null) {
    assertFloat('initialNoise', opts.initialNoise);
    check(
      opts.initialNoise.shape.length === shape.length && opts.initialNoise.shape.every((d, i) => d === shape[i]),
      () => `initialNoise must have the shape ${fmtShape(shape)} given in shape, got ${fmtShape(opts.initialNoise!.shape)}.`,
    );
  }
  const scale = opts.guidance == null ? 1 : opts.guidance.scale;
  check(
    typeof scale === 'number' && Number.isFinite(scale),
    () => `guidance.scale must be a finite number (1 = no guidance), got ${String(scale)}.`,
  );
  check(opts.onStep == null || typeof opts.onStep === 'function', 'onStep must be a function.');
  if (opts.releaseBuffers != null) assertOneOf('releaseBuffers', opts.releaseBuffers, ['shape', 'always', 'never']);
  return { shape, scale };
}

/** Calls the model once (batch B, or 2B with guidance) and returns the guided output `[B, ...]`. */
async function callModel(model: ModelFn, xIn: tf.Tensor, t: number, step: number, scale: number): Promise<tf.Tensor> {
  const guided = scale !== 1;
  const b = xIn.shape[0];
  const n = guided ? 2 * b : b;
  const xModel = guided ? tf.concat([xIn, xIn], 0) : xIn; // [2B, ...]: conditional rows, then unconditional
  const tModel = tf.fill([n], t, 'int32'); // [N]
  let out: tf.Tensor | undefined;
  try {
    out = await model(xModel, tModel, { step, guided });
    check(out instanceof tf.Tensor, () => `model must return a tf.Tensor, got ${typeof out}.`);
    if (out === xModel || out === xIn) out = tf.clone(out); // an identity model: keep ours separate from the output
    check(out.dtype === 'float32', () => `model output must be float32, got ${out!.dtype}.`);
    check(
      out.shape.length === xModel.shape.length && out.shape.every((d, i) => d === xModel.shape[i]),
      () =>
        `model output must have the shape of its input x ${fmtShape(xModel.shape)}${guided ? ' (batch 2B: guidance doubles the batch)' : ''}, ` +
        `got ${fmtShape(out!.shape)}.`,
    );
    if (!guided) {
      const result = out;
      out = undefined;
      return result;
    }
    const o = out;
    return tf.tidy(() => {
      const [cond, uncond] = tf.split(o, 2, 0); // [B, ...] each
      return tf.add(uncond, tf.mul(tf.sub(cond, uncond), scale));
    });
  } finally {
    if (guided) xModel.dispose();
    tModel.dispose();
    if (out instanceof tf.Tensor) out.dispose();
  }
}

/** The model-input shape of the last `sample` call in this process (see `releaseBuffers`). */
let lastShape: string | undefined;

/**
 * Draws a sample: `steps` steps of `sampler` from seeded standard-normal noise of `shape` down to the
 * clean sample (see the README for the timestep spacing and the guidance convention). The returned
 * tensor `[B, ...]` is the only tensor left behind; the caller disposes it.
 */
export async function sample(opts: SampleOptions): Promise<tf.Tensor> {
  const { shape, scale } = checkOptions(opts);
  const scheduler = getScheduler(opts.sampler);
  let state: SchedulerState = scheduler.setTimesteps(
    { schedule: opts.schedule, prediction: opts.prediction, eta: opts.eta, clipSample: opts.clipSample },
    opts.steps,
  );
  const { signal } = opts;
  if (signal?.aborted) throw abortReason(signal);
  const release = opts.releaseBuffers ?? 'shape';
  const modelShape = [scale !== 1 ? 2 * shape[0] : shape[0], ...shape.slice(1)].join('x');
  if (release === 'shape' && lastShape != null && lastShape !== modelShape) releaseFreeBuffers();
  lastShape = modelShape;
  const rng = new Rng(opts.seed ?? 0);
  let x: tf.Tensor = tf.tidy(() => tf.mul(opts.initialNoise ?? rng.randn(shape), state.initNoiseSigma)); // [B, ...]
  const total = state.timesteps.length;
  try {
    for (let i = 0; i < total; i++) {
      if (signal?.aborted) throw abortReason(signal);
      const t = state.timesteps[i];
      const xIn = scheduler.scaleModelInput(state, x, t);
      let out: tf.Tensor;
      try {
        out = await callModel(opts.model, xIn, t, i, scale);
      } finally {
        xIn.dispose();
      }
      let r: ReturnType<typeof scheduler.step>;
      try {
        if (signal?.aborted) throw abortReason(signal);
        r = scheduler.step(state, out, t, x, rng);
      } finally {
        out.dispose();
      }
      x.dispose();
      disposeState(state);
      x = r.prevSample;
      state = r.state;
      try {
        await opts.onStep?.({ step: i + 1, total, timestep: t, x0: r.predOriginalSample });
      } finally {
        r.predOriginalSample.dispose();
      }
      await nextTask();
    }
    if (signal?.aborted) throw abortReason(signal);
  } catch (err) {
    x.dispose();
    disposeState(state);
    throw err;
  }
  disposeState(state);
  if (release === 'always') releaseFreeBuffers(); // safe with work still queued (see releaseFreeBuffers)
  return x;
}
