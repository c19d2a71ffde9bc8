/**
 * The training loop of one stage: draw a batch, noise it, take gradients of the stage's loss for the
 * trainable weights only, clip, AdamW, EMA; log, report progress, checkpoint; stop cleanly on abort.
 * Every step frees what it made (the live-tensor count is flat across steps).
 */
import { join } from 'node:path';
import type { Rng } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { saveCheckpoint } from '../checkpoint/checkpoint.js';
import { appendMetrics } from '../checkpoint/metrics.js';
import { AdamW } from '../optim/adamw.js';
import { Ema } from '../optim/ema.js';
import { learningRate } from '../optim/schedule.js';
import { resolutions, type StageConfig, type StageName } from './config.js';
import { disposeNoised, noiseBatch, type StageModels, savedWeights, stageLoss, trainableWeights } from './stage-step.js';
import type { DataSource, TrainProgress } from './types.js';

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
  /** Called once the start state is copied in (its tensors may then be freed). */
  readonly onLoaded?: () => void;
}

export interface StageOutcome {
  aborted: boolean;
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
  const trainable = trainableWeights(stage, cfg, models);
  const names = Object.keys(trainable);
  const byVarName = new Map(names.map((n) => [trainable[n].name, n]));
  const optimizer = new AdamW(trainable, { beta1: cfg.beta1, beta2: cfg.beta2, weightDecay: cfg.weightDecay });
  const ema = new Ema(trainable, cfg.emaDecay);
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
  const t0 = performance.now();
  const firstStep = step;

  const checkpoint = async () => {
    const state = optimizer.state();
    const meta = run.metadata({ step, rng, data: run.data.state, optimizerStep: optimizer.t });
    await saveCheckpoint(ckptPath, { weights: savedWeights(models), m: state.m, v: state.v, ema: ema.weights() }, meta);
  };

  const outcome = (aborted: boolean): StageOutcome => ({
    aborted,
    step,
    loss: lastLoss,
    ema: ema.weights(),
    dispose: () => {
      optimizer.dispose();
      ema.dispose();
    },
  });

  try {
    while (step < cfg.steps) {
      if (run.signal?.aborted) {
        await checkpoint();
        return outcome(true);
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
      const nb = noiseBatch(batch, rng, run.alphasCumprod, cfg.captionDropout, models.model.config.patchSize);
      tf.dispose([batch.images, batch.tokens, batch.mask]);
      const lr = learningRate(step, {
        lr: cfg.lr,
        warmupSteps: cfg.warmupSteps,
        decay: cfg.lrDecay,
        totalSteps: cfg.steps,
        minLr: cfg.minLr,
      });
      let parts: Record<string, tf.Scalar> = {};
      let value: tf.Scalar | undefined;
      let norm: tf.Scalar | undefined;
      const sl = stageLoss(stage, cfg, models, nb);
      try {
        const res = tf.variableGrads(
          sl.loss,
          names.map((n) => trainable[n]),
        );
        value = res.value;
        parts = sl.parts();
        const grads: Record<string, tf.Tensor> = {};
        for (const [varName, g] of Object.entries(res.grads)) {
          const n = byVarName.get(varName);
          if (n != null && g != null) grads[n] = g;
        }
        try {
          norm = optimizer.clipAndStep(grads, lr, cfg.gradClip); // one flat clip + AdamW update
        } finally {
          tf.dispose(Object.values(grads));
        }
        ema.update(optimizer.t);
      } finally {
        sl.dispose();
        disposeNoised(nb);
      }
      step += 1;
      if (step % cfg.logEvery === 0 || step === cfg.steps) {
        const record: Record<string, number | string> = { step, stage, loss: (await value.data())[0] };
        for (const [k, v] of Object.entries(parts)) record[k] = (await v.data())[0];
        record.gradNorm = (await norm!.data())[0];
        record.lr = lr;
        lastLoss = record.loss as number;
        appendMetrics(metricsPath, record as { step: number; loss: number });
      }
      tf.dispose([value, norm!, ...Object.values(parts)]);
      if (step % cfg.checkpointEvery === 0 || step === cfg.steps) await checkpoint();
      const secondsPerStep = (performance.now() - t0) / 1000 / (step - firstStep);
      run.onProgress?.({ stage, step, total: cfg.steps, loss: lastLoss, secondsPerStep, etaSeconds: secondsPerStep * (cfg.steps - step) });
      await nextTask();
    }
    if (step === run.start.step) await checkpoint(); // nothing to do: still record the stage as reached
    return outcome(false);
  } catch (err) {
    optimizer.dispose();
    ema.dispose();
    throw err;
  }
}
