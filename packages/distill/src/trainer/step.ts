/**
 * One optimiser step of a stage, as the training loop and `t2md bench train` both run it: noise the
 * batch, take gradients of the stage's loss for the trainable weights only, clip, AdamW, EMA. Nothing
 * is read back to the host: the loss, its parts and the gradient norm come back as kept scalars.
 */
import { check, type Rng } from '@t2md/core';
import { TEXT_ENCODER_PREFIX } from '@t2md/dit';
import * as tf from '@tensorflow/tfjs-core';
import type { TrainPrediction } from '../losses/losses.js';
import { AdamW } from '../optim/adamw.js';
import { Ema } from '../optim/ema.js';
import type { StageConfig, StageName } from './config.js';
import { disposeNoised, type NoiseOptions, noiseBatch, type StageModels, stageLoss, trainableWeights } from './stage-step.js';
import type { DataBatch } from './types.js';

/** What one step leaves: kept scalars the caller reads (or not) and disposes with `disposeStepResult`. */
export interface StepResult {
  /** The total loss. */
  readonly loss: tf.Scalar;
  /** The loss terms by name (`mse`, `pseudo`, `mixer`, `forcing`). */
  readonly parts: Record<string, tf.Scalar>;
  /** The global gradient norm before clipping. */
  readonly gradNorm: tf.Scalar;
}

export function disposeStepResult(r: StepResult): void {
  tf.dispose([r.loss, r.gradNorm, ...Object.values(r.parts)]);
}

/** A stage's optimiser, EMA and step function over its trainable weights. */
export interface TrainStepper {
  readonly optimizer: AdamW;
  readonly ema: Ema;
  /** The trainable weights by namespaced name (`model.*`, `text_encoder.*`). */
  readonly trainable: Record<string, tf.Variable>;
  /**
   * One step on `batch` (which it disposes) at learning rate `lr`; draws timesteps, caption drops and
   * noise from `rng`.
   */
  step(batch: DataBatch, rng: Rng, lr: number): StepResult;
  /** Frees the optimiser moments and the EMA shadow (not the model). */
  dispose(): void;
}

export interface TrainStepOptions {
  readonly stage: StageName;
  readonly cfg: StageConfig;
  readonly models: StageModels;
  /** ᾱ_t of the noise schedule, t = 0..T−1. */
  readonly alphasCumprod: Float64Array;
  /** What the model predicts: L_mse's target (ε or v) and the form of the min-SNR-γ weights. */
  readonly prediction: TrainPrediction;
}

export function createTrainStep({ stage, cfg, models, alphasCumprod, prediction }: TrainStepOptions): TrainStepper {
  const trainable = trainableWeights(stage, cfg, models);
  const names = Object.keys(trainable);
  const vars = names.map((n) => trainable[n]);
  const trained = new Set(vars);
  const byVarName = new Map(names.map((n) => [trainable[n].name, n]));
  const adamw = { beta1: cfg.beta1, beta2: cfg.beta2, weightDecay: cfg.weightDecay, ...encoderLrScale(stage, cfg.textLrScale ?? 1, names) };
  const optimizer = new AdamW(trainable, adamw);
  const ema = new Ema(trainable, cfg.emaDecay);
  const noising: NoiseOptions = {
    captionDropout: cfg.captionDropout,
    patchSize: models.model.config.patchSize,
    minSnrGamma: cfg.minSnrGamma ?? 0,
    prediction,
    x0WeightCap: cfg.x0WeightCap ?? 1,
    pseudoX0Cap: cfg.pseudoX0Cap ?? 1,
    paired: (cfg.lambdaGuidance ?? 0) > 0,
  };

  const step = (batch: DataBatch, rng: Rng, lr: number): StepResult => {
    const nb = noiseBatch(batch, rng, alphasCumprod, noising);
    tf.dispose([batch.images, batch.tokens, batch.mask]);
    const sl = stageLoss(stage, cfg, models, nb, trained);
    try {
      const res = tf.variableGrads(sl.loss, vars);
      const parts = sl.parts();
      const grads: Record<string, tf.Tensor> = {};
      for (const [varName, g] of Object.entries(res.grads)) {
        const n = byVarName.get(varName);
        if (n != null && g != null) grads[n] = g;
      }
      let gradNorm: tf.Scalar;
      try {
        gradNorm = optimizer.clipAndStep(grads, lr, cfg.gradClip); // one flat clip + AdamW update
      } finally {
        tf.dispose(Object.values(grads));
      }
      ema.update(optimizer.t);
      return { loss: res.value, parts, gradNorm };
    } finally {
      sl.dispose();
      disposeNoised(nb);
    }
  };

  return {
    optimizer,
    ema,
    trainable,
    step,
    dispose() {
      optimizer.dispose();
      ema.dispose();
    },
  };
}

/**
 * AdamW's `lrScale` for a stage's `textLrScale` K: every trained `text_encoder.*` weight at K, nothing
 * when K is 1 (the plain update). A K ≠ 1 with no encoder weight to scale is refused, not ignored.
 */
function encoderLrScale(stage: StageName, k: number, names: readonly string[]): { lrScale?: Record<string, number> } {
  if (k === 1) return {};
  const encoder = names.filter((n) => n.startsWith(TEXT_ENCODER_PREFIX));
  check(
    encoder.length > 0,
    () =>
      `stage '${stage}' trains no caption encoder weight (${TEXT_ENCODER_PREFIX}*), so its textLrScale ${k} would do nothing; leave it at 1.`,
  );
  return { lrScale: Object.fromEntries(encoder.map((n) => [n, k])) };
}
