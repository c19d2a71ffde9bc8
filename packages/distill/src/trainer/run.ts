/**
 * A planned run (plan.ts), carried out top to bottom:
 *   1. the folder, and the models: the frozen teacher (distill), the model that trains and its caption
 *      encoder, from fresh weights, an init file or the checkpoint;
 *   2. each stage: its optimiser and EMA, then the loop (`runStageLoop`): batch → loss → AdamW step →
 *      EMA → log, evaluate, checkpoint, until the stage's last step or a stop (Ctrl-C, time limit);
 *   3. the stage's model files (EMA weights folded in), also when it stopped early.
 * Every step frees what it made (the live-tensor count is flat across steps).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Rng, takeWebGPUErrors } from '@t2md/core';
import {
  CONFIG_METADATA_KEY,
  createDiT,
  type DiT,
  fromCheckpoint,
  PREDICTION_KEY,
  PRESET_KEY,
  TEXT_ENCODER_KEY,
  type TextEncoderFactory,
  TRAIN_KEY,
  type TrainedModel,
  transferFromTeacher,
} from '@t2md/dit';
import { alphasCumprod } from '@t2md/sampler';
import * as tf from '@tensorflow/tfjs-core';
import { disposeCheckpoint, type LoadedCheckpoint, loadCheckpoint, saveCheckpoint } from '../checkpoint/checkpoint.js';
import { appendMetrics, type MetricsRecord, truncateMetrics } from '../checkpoint/metrics.js';
import { learningRate } from '../optim/schedule.js';
import { resolutions, STAGES } from './config.js';
import { checkStepHealth } from './health.js';
import { saveTrainedModel, type TrainState } from './model-file.js';
import type { RunHooks } from './options.js';
import { CHECKPOINT_FILE, METRICS_FILE, MODEL_FILE, type RunPlan } from './plan.js';
import { needsTeacher, type StageModels, savedWeights, withPosEmbed } from './stage-step.js';
import { createTrainStep, disposeStepResult } from './step.js';
import type { StageHooks, StageOutcome, StageRun, StageStart, TextEncoderLike, TrainProgress, TrainResult } from './types.js';

/** Carries out `plan`; `hooks` are the caller's data source, caption-encoder factory and callbacks. */
export async function runPlan<S>(plan: RunPlan, hooks: RunHooks<S>): Promise<TrainResult> {
  const { out, preset, spec, start, prediction } = plan;
  // Absent means epsilon (readPrediction), so only another type is written: an epsilon run's files stay
  // byte for byte what they were before the key (the pinned-bytes test, the shipped models' sha256s).
  const predicts: Record<string, string> = prediction === 'epsilon' ? {} : { [PREDICTION_KEY]: prediction };
  const checkpoint = join(out, CHECKPOINT_FILE);
  const modelPath = join(out, MODEL_FILE);
  // 1. The folder: metric lines logged after the checkpoint by a run that died are dropped (a new run
  // drops them all), so the file matches an uninterrupted run's.
  mkdirSync(out, { recursive: true });
  const upTo = plan.metricsUpTo;
  truncateMetrics(join(out, METRICS_FILE), (r: MetricsRecord) => {
    if (upTo == null) return false;
    const [rs, cs] = [STAGES.indexOf((r.stage as typeof upTo.stage) ?? upTo.stage), STAGES.indexOf(upTo.stage)];
    return rs < cs || (rs === cs && r.step <= upTo.step);
  });
  // The models. A distill run's caption encoder is the teacher file's, frozen (the student's own is dropped).
  let ckpt: LoadedCheckpoint | undefined = start.from === 'checkpoint' ? loadCheckpoint(start.file) : undefined;
  const dropCheckpoint = () => {
    if (ckpt) disposeCheckpoint(ckpt);
    ckpt = undefined;
  };
  let teacher: TrainedModel | undefined;
  let model: DiT | undefined;
  let encoder: TextEncoderLike | undefined;
  try {
    teacher = plan.teacher != null ? loadModelFile(plan.teacher, hooks.createEncoder) : undefined;
    const loaded =
      start.from === 'checkpoint'
        ? fromCheckpoint(ckpt!, hooks.createEncoder, start.file, { ema: false })
        : start.from === 'init'
          ? loadModelFile(start.file, hooks.createEncoder)
          : undefined;
    if (teacher != null) {
      loaded?.encoder.dispose();
      model = loaded?.model ?? createDiT(preset.student);
      if (loaded == null && plan.provenance.teacherInit !== false) transferFromTeacher(model, teacher.model);
    } else {
      model = loaded?.model ?? createDiT(preset.teacher);
    }
    encoder = teacher?.encoder ?? loaded?.encoder ?? hooks.createEncoder(spec);

    // 2. The stages.
    let result: TrainResult | undefined;
    for (const { name: stage, cfg, resume, complete } of plan.stages) {
      const trained = (at: object) => ({
        ...predicts,
        [PRESET_KEY]: JSON.stringify(preset),
        [TRAIN_KEY]: JSON.stringify({ format: 1, stage, ...at, ...plan.provenance }),
      });
      if (complete && ckpt != null && start.from === 'checkpoint') {
        // Finished before the interruption (its weights are loaded): make sure its model files exist,
        // and when `steps` ended it early, record it as complete so a following stage can chain from it.
        for (const f of [`${stage}.safetensors`, MODEL_FILE]) {
          await saveTrainedModel(join(out, f), model, encoder, spec, ckpt.ema, trained({ step: start.state.step }), plan.modelDtype);
        }
        if (start.state.steps !== cfg.steps) {
          const { weights, m, v, ema, metadata } = ckpt;
          await saveCheckpoint(
            checkpoint,
            { weights, m, v, ema },
            { ...metadata, [TRAIN_KEY]: JSON.stringify({ ...start.state, steps: cfg.steps }) },
          );
        }
        dropCheckpoint();
        continue;
      }
      // adapt / finetune: the student's positional embedding (and so its config) may change here.
      if (teacher != null && model.config.posEmbed !== cfg.posEmbed) model = withPosEmbed(model, cfg.posEmbed, teacher.model.config);
      const from: StageStart =
        resume && ckpt != null && start.from === 'checkpoint'
          ? resumeFrom(ckpt, start.state)
          : { step: 0, rng: new Rng(preset.seed + STAGES.indexOf(stage)) };
      if (!resume) dropCheckpoint();
      const models: StageModels = { model, encoder, teacher: needsTeacher(stage, cfg) ? teacher?.model : undefined };
      const data = hooks.data({
        seed: preset.dataSeed,
        resolution: resolutions(cfg)[0].size,
        batchSize: cfg.batchSize,
        maxTokens: preset.captionTokens,
        ...(cfg.dataMix != null ? { mix: cfg.dataMix } : {}),
        ...(from.data !== undefined ? { state: from.data as S } : {}),
      });
      const outcome = await runStageLoop(
        {
          dir: out,
          stage,
          cfg,
          models,
          data: data as StageRun['data'],
          alphasCumprod: alphasCumprod(preset.schedule),
          prediction,
          start: from,
          onLoaded: dropCheckpoint,
          metadata: ({ step, rng, data: position, optimizerStep }) => {
            const state: TrainState = {
              format: 1,
              run: plan.run,
              stage,
              step,
              steps: cfg.steps,
              rng: rng.state,
              data: position ?? null,
              optimizerStep,
              ...plan.provenance,
            };
            return {
              [CONFIG_METADATA_KEY]: JSON.stringify(models.model.config),
              [TEXT_ENCODER_KEY]: JSON.stringify(spec),
              ...predicts,
              [PRESET_KEY]: JSON.stringify(preset),
              [TRAIN_KEY]: JSON.stringify(state),
            };
          },
        },
        hooks,
      );
      // 3. The stage's model files. A stopped run still leaves a model to sample (its EMA weights so
      // far), marked unfinished; `resume` continues it from the checkpoint.
      try {
        const { step, loss, stopped } = outcome;
        if (outcome.aborted) {
          const partial = trained({ step, steps: cfg.steps, stopped });
          await saveTrainedModel(modelPath, model, encoder, spec, outcome.ema, partial, plan.modelDtype);
          return { aborted: true, ...(stopped ? { stopped } : {}), stage, step, checkpoint, model: modelPath, loss };
        }
        for (const f of [`${stage}.safetensors`, MODEL_FILE]) {
          await saveTrainedModel(join(out, f), model, encoder, spec, outcome.ema, trained({ step }), plan.modelDtype);
        }
        result = { aborted: false, stage, step, checkpoint, model: modelPath, loss };
      } finally {
        outcome.dispose();
      }
    }
    // Nothing left to run: every stage asked for was complete in the checkpoint.
    const st = start.from === 'checkpoint' ? start.state : undefined;
    return result ?? { aborted: false, stage: st!.stage, step: st!.step, checkpoint, model: modelPath, loss: Number.NaN };
  } finally {
    dropCheckpoint();
    model?.dispose();
    if (teacher != null) teacher.dispose();
    else encoder?.dispose();
  }
}

/** Yields to the event loop so a SIGINT handler (which aborts the signal) runs between steps. */
const nextTask = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One stage's loop: draw a batch, take a step (noise, loss, gradients of the trainable weights, clip,
 * AdamW, EMA: step.ts), log, evaluate, checkpoint; stop cleanly on abort or at the deadline (`hooks`).
 */
export async function runStageLoop(run: StageRun, hooks: StageHooks = {}): Promise<StageOutcome> {
  const { cfg, models, stage, dir } = run;
  const stepper = createTrainStep({ stage, cfg, models, alphasCumprod: run.alphasCumprod, prediction: run.prediction });
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
  takeWebGPUErrors(); // the stage's own errors only: earlier ones belong to whoever caused them
  let lastLoss = Number.NaN;
  let lastEval: TrainProgress['lastEval'];
  let t0 = performance.now();
  const firstStep = step;

  const checkpoint = async () => {
    const state = optimizer.state();
    const meta = run.metadata({ step, rng, data: run.data.state, optimizerStep: optimizer.t });
    await saveCheckpoint(ckptPath, { weights: savedWeights(models), m: state.m, v: state.v, ema: ema.weights() }, meta);
  };
  const outcome = (stopped: StageOutcome['stopped']): StageOutcome => {
    return { aborted: stopped != null, stopped, step, loss: lastLoss, ema: ema.weights(), dispose: () => stepper.dispose() };
  };
  /** Why the loop must stop before its next step, if it must. */
  const stopReason = (): StageOutcome['stopped'] => {
    if (hooks.signal?.aborted) return 'signal';
    if (hooks.deadline != null && performance.now() >= hooks.deadline) return 'time-limit';
    return undefined;
  };

  try {
    while (step < cfg.steps) {
      const stop = stopReason();
      if (stop != null) {
        hooks.onStopping?.(stop);
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
      const { lr: peak, warmupSteps, lrDecay: decay, steps: totalSteps, minLr } = cfg;
      const lr = learningRate(step, { lr: peak, warmupSteps, decay, totalSteps, minLr });
      const res = stepper.step(batch, rng, lr);
      step += 1;
      try {
        if (step % cfg.logEvery === 0 || step === cfg.steps) {
          const record: Record<string, number | string> = { step, stage, loss: (await res.loss.data())[0] };
          for (const [k, v] of Object.entries(res.parts)) record[k] = (await v.data())[0];
          record.gradNorm = (await res.gradNorm.data())[0];
          record.lr = lr;
          lastLoss = record.loss as number;
          checkStepHealth(stage, step, lastLoss); // before the line is kept: a broken step's numbers are garbage
          appendMetrics(metricsPath, record as { step: number; loss: number });
        }
      } finally {
        disposeStepResult(res);
      }
      const ev = hooks.evaluate;
      if (ev != null && (step % ev.every === 0 || step === cfg.steps)) {
        // before the checkpoint: a run that dies between the two redoes both from the previous one
        const e0 = performance.now();
        const scores = await withEmaWeights(models, ema.weights(), () =>
          ev.run({ ...models, prediction: run.prediction }, { stage, step }),
        );
        appendMetrics(metricsPath, { step, stage, eval: ev.name, ...scores });
        lastEval = { step, scores };
        t0 += performance.now() - e0; // the step rate counts training only
      }
      if (step % cfg.checkpointEvery === 0 || step === cfg.steps) await checkpoint();
      const secondsPerStep = (performance.now() - t0) / 1000 / (step - firstStep);
      const { batchSize, steps: total } = cfg;
      const rate = { secondsPerStep, samplesPerSecond: batchSize / secondsPerStep, etaSeconds: secondsPerStep * (total - step) };
      hooks.onProgress?.({ stage, step, total, loss: lastLoss, ...rate, ...(lastEval ? { lastEval } : {}) });
      await nextTask();
    }
    if (step === run.start.step) await checkpoint(); // nothing to do: still record the stage as reached
    return outcome(undefined);
  } catch (err) {
    stepper.dispose();
    throw err;
  }
}

/** The resume point of a checkpoint's stage: step, RNG, optimiser moments, EMA, data position. */
function resumeFrom(ckpt: LoadedCheckpoint, st: TrainState): StageStart {
  return {
    step: st.step,
    rng: new Rng(st.rng),
    optimizer: { t: st.optimizerStep, m: ckpt.m, v: ckpt.v },
    ema: ckpt.ema,
    data: st.data ?? undefined,
  };
}

/** A model file's models, EMA weights folded in (the decoded file is freed once they hold copies). */
function loadModelFile(path: string, createEncoder: TextEncoderFactory): TrainedModel {
  const file = loadCheckpoint(path);
  try {
    return fromCheckpoint(file, createEncoder, path, { ema: true });
  } finally {
    disposeCheckpoint(file);
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
      saved.push([v, tf.clone(v)]);
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
