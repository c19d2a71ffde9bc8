/**
 * The checks of a stage's loss weightings (part of `checkStageConfig`, and of `planDistill` for what
 * its teacher file decides): min-SNR-γ and the high-noise weights of L_mse (`x0WeightCap`) and of
 * L_pseudo (`pseudoX0Cap`), and L_guidance's λ. Each bad value is one sentence naming the field.
 */
import { check } from '@t2md/core';
import type { TrainPrediction } from '../losses/losses.js';
import type { StageConfig, StageName } from './config.js';

/** The stages that run the student's output against the teacher's, where L_guidance can apply. */
export const GUIDANCE_STAGES: readonly StageName[] = ['distill', 'adapt', 'finetune'];

/** Checks `c`'s loss weightings for `stage` (`at` names the stage). */
export function checkLossWeights(at: string, stage: StageName, c: StageConfig): void {
  const g = c.minSnrGamma ?? 0;
  check(Number.isFinite(g) && g >= 0, () => `${at} minSnrGamma must be a finite number >= 0 (0 = off), got ${String(c.minSnrGamma)}.`);
  const cap = c.pseudoX0Cap ?? 1;
  check(Number.isFinite(cap) && cap >= 1, () => `${at} pseudoX0Cap must be a finite number >= 1 (1 = off), got ${String(c.pseudoX0Cap)}.`);
  checkX0Weight(at, stage, c);
  checkGuidance(at, stage, c);
}

/**
 * The checks of an ε-only weighting that a distillation stage's config cannot make alone: its student
 * predicts what the teacher file does (`prediction`, read from `teacherPath`).
 */
export function checkStudentWeights(stage: StageName, c: StageConfig, prediction: TrainPrediction, teacherPath: string): void {
  check(
    prediction === 'epsilon' || (c.pseudoX0Cap ?? 1) === 1,
    () =>
      `stage '${stage}' sets pseudoX0Cap, which weights an ε student's L_pseudo, but ${teacherPath} predicts v (its L_pseudo already weights high noise); leave it at 1.`,
  );
  check(
    prediction === 'epsilon' || (c.x0WeightCap ?? 1) === 1,
    () =>
      `stage '${stage}' sets x0WeightCap, which weights an ε student's L_mse, but ${teacherPath} predicts v (its L_mse already weights high noise); leave it at 1.`,
  );
}

/** `c.x0WeightCap`: Γ ≥ 1, on a stage with an L_mse, of a model the stage itself says predicts ε (the teacher's). */
function checkX0Weight(at: string, stage: StageName, c: StageConfig): void {
  const cap = c.x0WeightCap ?? 1;
  check(Number.isFinite(cap) && cap >= 1, () => `${at} x0WeightCap must be a finite number >= 1 (1 = off), got ${String(c.x0WeightCap)}.`);
  if (cap === 1) return;
  check(
    stage !== 'forcing',
    () => `${at} has no L_mse (teacher forcing matches each mixer's output), so its x0WeightCap ${cap} would do nothing; leave it at 1.`,
  );
  check(
    c.prediction !== 'v',
    () =>
      `${at} sets x0WeightCap, which weights an ε model's L_mse, but its prediction is v (its L_mse already weights high noise); leave it at 1.`,
  );
}

/** `c.lambdaGuidance` for `stage`: λ ≥ 0, non-zero only where the student meets the teacher, on even batches. */
function checkGuidance(at: string, stage: StageName, c: StageConfig): void {
  const lambda = c.lambdaGuidance ?? 0;
  check(
    Number.isFinite(lambda) && lambda >= 0,
    () => `${at} lambdaGuidance must be a finite number >= 0 (0 = off), got ${String(c.lambdaGuidance)}.`,
  );
  if (lambda === 0) return;
  check(
    GUIDANCE_STAGES.includes(stage),
    () =>
      `${at} does not compare the student's output with the teacher's (only stages ${GUIDANCE_STAGES.join(', ')} do), so its lambdaGuidance ${lambda} would do nothing; leave it at 0.`,
  );
  check(
    c.batchSize % 2 === 0,
    () =>
      `${at} lambdaGuidance pairs each image with its caption-dropped copy, so its batchSize must be even, got ${c.batchSize}; pass an even batch size.`,
  );
}
