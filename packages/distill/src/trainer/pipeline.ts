/**
 * The two runs the CLI starts, each planned, then run: `trainTeacher` (`t2md train`) and
 * `distillStudent` (`t2md distill`). Both own `DIR/latest.safetensors` (the checkpoint),
 * `DIR/metrics.jsonl`, and write the finished model to `DIR/model.safetensors` (plus
 * `DIR/<stage>.safetensors` for each completed stage). plan.ts resolves the options, run.ts trains.
 */
import type { DistillOptions, RunOptions } from './options.js';
import { planDistill, planTeacher } from './plan.js';
import { runPlan } from './run.js';
import type { TrainResult } from './types.js';

export { MODEL_PREFIX, TEXT_ENCODER_PREFIX } from '@t2md/dit';
export type { InitRecord, TrainState } from './model-file.js';
export type { DistillOptions, RunOptions } from './options.js';
export { MODEL_FILE } from './plan.js';

/** Trains the teacher DiT and the caption encoder with the plain denoising loss (stage `teacher`). */
export async function trainTeacher<S>(opts: RunOptions<S>): Promise<TrainResult> {
  return runPlan(planTeacher(opts), opts);
}

/**
 * Distils the teacher into the hybrid student, stage by stage (forcing → distill → adapt → finetune,
 * or the one asked for). See `planDistill` for how a run continues a checkpoint in `out`.
 */
export async function distillStudent<S>(opts: DistillOptions<S>): Promise<TrainResult> {
  return runPlan(planDistill(opts), opts);
}
