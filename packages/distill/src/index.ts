/**
 * @t2md/distill: the T2MD losses (teacher forcing, feature distillation), AdamW with warm-up, clipping
 * and EMA, atomic checkpoints, and the staged trainer (teacher → forcing → distill → adapt → finetune).
 */

export type { AtomicWriteHooks } from './checkpoint/atomic.js';
export { atomicWriteFile, removeStaleTemps } from './checkpoint/atomic.js';
export type { CheckpointTensors, LoadedCheckpoint } from './checkpoint/checkpoint.js';
export { decodeCheckpoint, disposeCheckpoint, encodeCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint/checkpoint.js';
export type { MetricsRecord } from './checkpoint/metrics.js';
export { appendMetrics, readMetrics, truncateMetrics } from './checkpoint/metrics.js';
export * from './losses/losses.js';
export type { AdamWConfig, AdamWState, ResolvedAdamWConfig } from './optim/adamw.js';
export { AdamW, clipByGlobalNorm } from './optim/adamw.js';
export { Ema } from './optim/ema.js';
export type { LrSchedule } from './optim/schedule.js';
export { learningRate } from './optim/schedule.js';
export type { ResolutionChoice, StageConfig, StageName, TrainableSet, TrainPreset } from './trainer/config.js';
export {
  checkStageConfig,
  DISTILL_STAGES,
  getPreset,
  PRESET_NAMES,
  STAGES,
  shapesPreset,
  TRAIN_PRESETS,
  tinyPreset,
} from './trainer/config.js';
export { checkStepHealth, TrainingFailedError } from './trainer/health.js';
export type { InitRecord, Provenance, TrainedModel, TrainState } from './trainer/model-file.js';
export { fromCheckpoint, loadTrainedModel, PRESET_KEY, saveTrainedModel, TEXT_ENCODER_KEY, TRAIN_KEY } from './trainer/model-file.js';
export type { DistillOptions, RunHooks, RunOptions, StageOverrides, StudentChanges } from './trainer/options.js';
export { distillStudent, MODEL_PREFIX, TEXT_ENCODER_PREFIX, trainTeacher } from './trainer/pipeline.js';
export type { RunPlan, RunStart, StagePlan } from './trainer/plan.js';
export { CHECKPOINT_FILE, METRICS_FILE, MODEL_FILE, planDistill, planTeacher } from './trainer/plan.js';
export { runPlan, runStageLoop } from './trainer/run.js';
export type { NoisedBatch, NoiseOptions, StageModels } from './trainer/stage-step.js';
export { disposeNoised, needsTeacher, noiseBatch, savedWeights, stageLoss, trainableWeights, withPosEmbed } from './trainer/stage-step.js';
export type { StepResult, TrainStepOptions, TrainStepper } from './trainer/step.js';
export { createTrainStep, disposeStepResult } from './trainer/step.js';
export type {
  DataBatch,
  DataFactory,
  DataSource,
  StageEvaluator,
  StageHooks,
  StageOutcome,
  StageRun,
  StageStart,
  TextEncoderFactory,
  TextEncoderLike,
  TextEncoderSpec,
  TrainProgress,
  TrainResult,
} from './trainer/types.js';
