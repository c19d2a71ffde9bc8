/**
 * What the trainer plugs in from outside: the data source (the CLI passes @t2md/shapes's dataset) and
 * the caption encoder (@t2md/shapes's `createCaptionEncoder`). Both are interfaces so this package does
 * not depend on the shapes world. Also what a run reports and returns, and one stage loop's shapes.
 */

import type { Rng } from '@t2md/core';
import type { DiT, TextEncoderLike } from '@t2md/dit';
import type * as tf from '@tensorflow/tfjs-core';
import type { TrainPrediction } from '../losses/losses.js';
import type { StageConfig, StageName } from './config.js';
import type { StageModels } from './stage-step.js';

/** One batch of captioned images. The trainer disposes the three tensors. */
export interface DataBatch {
  /** float32 `[B, 3, H, W]` in [-1, 1]. */
  readonly images: tf.Tensor;
  /** int32 `[B, Lc]` token ids. */
  readonly tokens: tf.Tensor;
  /** bool `[B, Lc]`, true for a real token. */
  readonly mask: tf.Tensor;
}

/**
 * A stream of batches. For an exact resume it exposes its position as JSON-serialisable `state` and
 * can `restore` it (the checkpoint stores it); without them a resumed run sees different data.
 */
export interface DataSource<S = unknown> {
  /** The next batch; `resolution` asks for images of that side (mixed-resolution stages). */
  next(opts?: { resolution?: number }): DataBatch | Promise<DataBatch>;
  readonly state?: S;
  restore?(state: S): void;
}

/** How the trainer asks for a data source (shapes's `createDataset` has this signature). */
export type DataFactory<S = unknown> = (opts: {
  seed: number;
  resolution: number;
  batchSize: number;
  maxTokens: number;
  /** The stage's `dataMix`, when it sets one: relative weights of the source's kinds of item. */
  mix?: Readonly<Record<string, number>>;
  state?: S;
}) => DataSource<S>;

export type { TextEncoderFactory, TextEncoderLike, TextEncoderSpec } from '@t2md/dit';

/**
 * A quick quality check run during training (`t2md train --eval-every`): every `every` steps and at the
 * stage's last step, the loop swaps the EMA weights into the model, calls `run`, swaps them back, and
 * appends `{step, stage, eval: name, ...scores}` to metrics.jsonl. The scores must depend only on the
 * weights (fixed seeds, no clock), so a resumed run writes the same lines; its time is left out of the
 * step rate.
 */
export interface StageEvaluator {
  /** Names the lines it writes (`"eval": name`). */
  readonly name: string;
  /** Steps between evaluations (≥ 1). */
  readonly every: number;
  /** `prediction`: what the model outputs, to sample it with (a sampler told otherwise draws noise). */
  run(
    models: { model: DiT; encoder: TextEncoderLike; prediction: TrainPrediction },
    at: { stage: StageName; step: number },
  ): Promise<Record<string, number>>;
}

/** Reported after every step (the CLI draws the bar). */
export interface TrainProgress {
  readonly stage: StageName;
  /** Steps done in this stage, 1..total. */
  readonly step: number;
  readonly total: number;
  /** The last logged loss (read back every `logEvery` steps). */
  readonly loss: number;
  /** Seconds per step over this process's steps so far, and the estimated seconds left in the stage. */
  readonly secondsPerStep: number;
  /** Training images per second over the same steps (batch size / secondsPerStep). */
  readonly samplesPerSecond: number;
  readonly etaSeconds: number;
  /** The scores of this stage's latest in-training evaluation (`RunOptions.evaluate`), once there is one. */
  readonly lastEval?: { readonly step: number; readonly scores: Readonly<Record<string, number>> };
}

/** What a run returns. */
export interface TrainResult {
  /** True when the run stopped before its last step (the signal or the time limit); its checkpoint and model were saved first. */
  readonly aborted: boolean;
  /** Why it stopped early. */
  readonly stopped?: 'signal' | 'time-limit';
  /** The stage the run ended in and its step. */
  readonly stage: StageName;
  readonly step: number;
  /** `DIR/latest.safetensors`. */
  readonly checkpoint: string;
  /** `DIR/model.safetensors` (EMA weights, sampling-ready), written when the last stage completes or the run stops early. */
  readonly model?: string;
  /** The last logged loss; NaN when no step ran (the checkpoint had already finished every stage asked for). */
  readonly loss: number;
}

/** What a stage resumes from (a checkpoint's optimiser, EMA and positions), or nothing for a fresh start. */
export interface StageStart {
  step: number;
  rng: Rng;
  optimizer?: { t: number; m: Record<string, tf.Tensor>; v: Record<string, tf.Tensor> };
  ema?: Record<string, tf.Tensor>;
  /** The data source's saved position. */
  data?: unknown;
}

/**
 * One stage's loop (`runStageLoop`): its models, data and start, as the plan and the run's state give
 * them. The caller's callbacks and stop conditions come beside it (`StageHooks`).
 */
export interface StageRun {
  readonly dir: string;
  readonly stage: StageName;
  readonly cfg: StageConfig;
  readonly models: StageModels;
  readonly data: DataSource;
  readonly alphasCumprod: Float64Array;
  /** What the trained model predicts (`RunPlan.prediction`): L_mse's target, and how evaluate samples. */
  readonly prediction: TrainPrediction;
  readonly start: StageStart;
  /** Metadata of every checkpoint (besides the training state this loop adds). */
  readonly metadata: (state: { step: number; rng: Rng; data: unknown; optimizerStep: number }) => Record<string, string>;
  /** Called once the start state is copied in (its tensors may then be freed). */
  readonly onLoaded?: () => void;
}

/** What the caller of a stage's loop plugs in: progress, stop conditions, the in-training check. */
export interface StageHooks {
  readonly onProgress?: (p: TrainProgress) => void;
  readonly signal?: AbortSignal;
  /**
   * `performance.now()` after which the loop stops (at the end of the step in flight), saving a
   * checkpoint: `t2md train --time-limit`.
   */
  readonly deadline?: number;
  /** Called when the loop stops early, just before it saves (the CLI then lets a later Ctrl-C quit at once). */
  readonly onStopping?: (reason: 'signal' | 'time-limit') => void;
  /** A quick quality check every few steps, on the EMA weights (metrics.jsonl). */
  readonly evaluate?: StageEvaluator;
}

/** How a stage's loop ended. */
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
