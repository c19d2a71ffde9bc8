/**
 * The training loop of one stage: draw a batch, noise it, take gradients of the stage's loss for the
 * trainable weights only, clip, AdamW, EMA (`step.ts`); log, report progress, checkpoint; stop cleanly on
 * abort or at a deadline.
 * Every step frees what it made (the live-tensor count is flat across steps).
 */
import { join } from 'node:path';
import type { Rng } from '@t2md/core';
import type * as tf from '@tensorflow/tfjs-core';
import * as tfCore from '@tensorflow/tfjs-core';
import { saveCheckpoint } from '../checkpoint/checkpoint.js';
import { appendMetrics } from '../checkpoint/metrics.js';
import { learningRate } from '../optim/schedule.js';
import { resolutions, type StageConfig, type StageName } from './config.js';
import { type StageModels, savedWeights } from './stage-step.js';
import { createTrainStep, disposeStepResult } from './step.js';
import type { DataSource, StageEvaluator, TrainProgress } from './types.js';

export const CHECKPOINT_FILE = 'latest.safetensors';
export const METRICS_FILE = 'metrics.jsonl';

/** What a stage resumes from (a checkpoint's optimiser, EMA and positions), or nothing for a fresh start. */
export interface StageStart {
  step: number;
  rng: Rng;
  optimizer?: { t: number; m: Record<string, tf.Tensor>; v: Record<string, tf.Tensor> };
  ema?: Record<string, tf.Tensor>;
  /** The data source's saved position. */
  data?: unknown;
}

export interface StageRun {
  readonly dir: string;
  readonly stage: StageName;
  readonly cfg: StageConfig;
  readonly models: StageModels;
  readonly data: DataSource;
  readonly alphasCumprod: Float64Array;
  readonly start: StageStart;
  /** Metadata of every checkpoint (besides the training state this loop adds). */
  readonly metadata: (state: { step: number; rng: Rng; data: unknown; optimizerStep: number }) => Record<string, string>;
  readonly onProgress?: (p: TrainProgress) => void;
  readonly signal?: AbortSignal;
  /**
   * `performance.now()` after which the loop stops (at the end of the step in flight), saving a
   * checkpoint: `t2md train --time-limit`.
   */
  readonly deadline?: number;
  /** Called when the loop stops early, just before it saves (the CLI then lets a later Ctrl-C quit at once). */
  readonly onStopping?: (reason: 'signal' | 'time-limit') => void;
  /** Called once the start state is copied in (its tensors may then be freed). */
  readonly onLoaded?: () => void;
  /** A quick quality check every few steps, on the EMA weights (metrics.jsonl). */
  readonly evaluate?: StageEvaluator;
}

export interface StageOutcome {
  /** True when the loop stopped before the stage's last step (a checkpoint was saved first). */
  aborted: boolean;
  /** Why it stopped early: the abort signal (Ctrl-C) or the deadline. */
  stopped?: 'signal' | 'time-limit';
  step: number;
  loss: number;
  /** The EMA weights by namespaced name (live variables; disposed with `dispose`). */
  ema: Record<string, tf.Variable>;
  dispose: () => void;
}

/** Yields to the event loop so a SIGINT handler (which aborts the signal) runs between steps. */
const nextTask = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function runStageLoop(run: StageRun): Promise<StageOutcome> {
  const { cfg, models, stage, dir } = run;
  const stepper = createTrainStep({ stage, cfg, models, alphasCumprod: run.alphasCumprod });
  const { optimizer, ema } = stepper;
  const rng = run.start.rng;
  if (run.start.optimizer) optimizer.load(run.start.optimizer);
  if (run.start.ema) ema.load(run.start.ema);
  run.onLoaded?.();
  const choices = resolutions(cfg);
  const weightSum = choices.reduce((a, c) => a + c.weight, 0);
  const ckptPath = join(dir, CHECKPOINT_FILE);
  const metricsPath = join(dir, METRICS_FILE);

  let step = run.start.step;
  let lastLoss = Number.NaN;
  let lastEval: TrainProgress['lastEval'];
  let t0 = performance.now();
  const firstStep = step;

  const checkpoint = async () => {
    const state = optimizer.state();
    const meta = run.metadata({ step, rng, data: run.data.state, optimizerStep: optimizer.t });
    await saveCheckpoint(ckptPath, { weights: savedWeights(models), m: state.m, v: state.v, ema: ema.weights() }, meta);
  };

  const outcome = (stopped: StageOutcome['stopped']): StageOutcome => ({
    aborted: stopped != null,
    stopped,
    step,
    loss: lastLoss,
    ema: ema.weights(),
    dispose: () => stepper.dispose(),
  });
  /** Why the loop must stop before its next step, if it must. */
  const stopReason = (): StageOutcome['stopped'] => {
    if (run.signal?.aborted) return 'signal';
    if (run.deadline != null && performance.now() >= run.deadline) return 'time-limit';
    return undefined;
  };

  try {
    while (step < cfg.steps) {
      const stop = stopReason();
      if (stop != null) {
        run.onStopping?.(stop);
        await checkpoint();
        return outcome(stop);
      }
      // The resolution draw comes first so the RNG sequence does not depend on the image size.
      let size = choices[0].size;
      if (choices.length > 1) {
        const u = rng.next() * weightSum;
        let acc = 0;
        size = choices[choices.length - 1].size;
        for (const c of choices) {
          acc += c.weight;
          if (u < acc) {
            size = c.size;
            break;
          }
        }
      }
      const batch = await run.data.next(choices.length > 1 ? { resolution: size } : undefined);
      const lr = learningRate(step, {
        lr: cfg.lr,
        warmupSteps: cfg.warmupSteps,
        decay: cfg.lrDecay,
        totalSteps: cfg.steps,
        minLr: cfg.minLr,
      });
      const res = stepper.step(batch, rng, lr);
      step += 1;
      try {
        if (step % cfg.logEvery === 0 || step === cfg.steps) {
          const record: Record<string, number | string> = { step, stage, loss: (await res.loss.data())[0] };
          for (const [k, v] of Object.entries(res.parts)) record[k] = (await v.data())[0];
          record.gradNorm = (await res.gradNorm.data())[0];
          record.lr = lr;
          lastLoss = record.loss as number;
          appendMetrics(metricsPath, record as { step: number; loss: number });
        }
      } finally {
        disposeStepResult(res);
      }
      const ev = run.evaluate;
      if (ev != null && (step % ev.every === 0 || step === cfg.steps)) {
        // before the checkpoint: a run that dies between the two redoes both from the previous one
        const e0 = performance.now();
        const scores = await withEmaWeights(models, ema.weights(), () => ev.run(models, { stage, step }));
        appendMetrics(metricsPath, { step, stage, eval: ev.name, ...scores });
        lastEval = { step, scores };
        t0 += performance.now() - e0; // the step rate counts training only
      }
      if (step % cfg.checkpointEvery === 0 || step === cfg.steps) await checkpoint();
      const secondsPerStep = (performance.now() - t0) / 1000 / (step - firstStep);
      run.onProgress?.({
        stage,
        step,
        total: cfg.steps,
        loss: lastLoss,
        secondsPerStep,
        samplesPerSecond: cfg.batchSize / secondsPerStep,
        etaSeconds: secondsPerStep * (cfg.steps - step),
        ...(lastEval ? { lastEval } : {}),
      });
      await nextTask();
    }
    if (step === run.start.step) await checkpoint(); // nothing to do: still record the stage as reached
    return outcome(undefined);
  } catch (err) {
    stepper.dispose();
    throw err;
  }
}

/**
 * Runs `fn` with the averaged weights in the model (EMA names are the checkpoint's namespaced names),
 * then puts the trained weights back, also when `fn` throws.
 */
async function withEmaWeights<T>(models: StageModels, averaged: Record<string, tf.Variable>, fn: () => Promise<T>): Promise<T> {
  const live = savedWeights(models);
  const saved: [tf.Variable, tf.Tensor][] = [];
  try {
    for (const [name, a] of Object.entries(averaged)) {
      const v = live[name];
      if (v == null) continue;
      saved.push([v, tfCore.clone(v)]);
      v.assign(a);
    }
    return await fn();
  } finally {
    for (const [v, t] of saved) {
      v.assign(t);
      t.dispose();
    }
  }
}
