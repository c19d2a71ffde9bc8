/**
 * What a caller asks of a run (`trainTeacher`, `distillStudent`): folders, preset, overrides, resume
 * or init, and the hooks the run calls (data, caption encoder, progress, stop). `planTeacher` and
 * `planDistill` (plan.ts) resolve it into a `RunPlan`; the hooks go to `runPlan` (run.ts).
 */
import type { MambaSettings } from '@t2md/dit';
import type { StageConfig, StageName, TrainPreset } from './config.js';
import type { DataFactory, StageEvaluator, TextEncoderFactory, TrainProgress } from './types.js';

/** Per-stage config changes (`RunOptions.overrides`). */
export type StageOverrides = Partial<Record<StageName, Partial<StageConfig>>>;

/**
 * Changes to the preset's student for a new distillation run: the block layout (e.g. all-Mamba
 * `'(HM-WM)x4'` for the "no self-attention" ablation) and Mamba settings (e.g. `{bidirectional: false}`
 * for the unidirectional-scan ablation).
 */
export interface StudentChanges {
  readonly layout?: string;
  readonly mamba?: Partial<MambaSettings>;
}

/** Options shared by both runs. */
export interface RunOptions<S = unknown> {
  /** Output directory (created if missing). */
  out: string;
  /** `'tiny'` (default), `'shapes'`, or a preset object. Ignored on resume (the checkpoint's is used). */
  preset?: string | TrainPreset;
  /** Steps of each stage run (overrides the preset; on resume it may extend the checkpoint's stage). */
  steps?: number;
  /** Continue from `out/latest.safetensors` at its step. */
  resume?: boolean;
  /**
   * Start a new run from this model file's weights (EMA folded in, as train and distill write them)
   * instead of a fresh initialisation: `trainTeacher` reads a teacher file, `distillStudent` a student
   * file in place of the teacher's weights. Optimiser, step count, schedule and data stream start anew.
   * For continuing a model in another session from the committed file (a checkpoint with optimiser
   * state is three times larger). Recorded in `t2md.train` (`init`, and the file's `commands` first).
   * The preset defaults to the file's. Not with `resume`.
   */
  init?: string;
  /**
   * Float type of the model files (`model.safetensors`, `<stage>.safetensors`): `'f32'` (default) or
   * `'f16'` (half the bytes, for files that ship; they load back as float32). Checkpoints stay f32, so a
   * resume is exact.
   */
  modelDtype?: 'f32' | 'f16';
  /** The data source factory (the CLI passes @t2md/shapes's `createDataset`). */
  data: DataFactory<S>;
  /** The caption-encoder factory (the CLI passes @t2md/shapes's `createCaptionEncoder`). */
  createEncoder: TextEncoderFactory;
  /** The tokenizer's vocabulary size (@t2md/shapes's `VOCAB_SIZE`). */
  vocabSize: number;
  /**
   * Changes to stage configs (tests, experiments, the CLI's --lr, --batch-size, --lambda-*); stored in
   * the checkpoint with the preset. A resume must not change them (InputError); a chained distill run
   * applies those of the stages it runs.
   */
  overrides?: StageOverrides;
  onProgress?: (p: TrainProgress) => void;
  /** Aborting (Ctrl-C) finishes the step, saves the checkpoint and the model, and returns `{aborted: true}`. */
  signal?: AbortSignal;
  /**
   * Stop at this `performance.now()` time: the step in flight finishes, then the checkpoint and the
   * model are saved and the run returns `{aborted: true, stopped: 'time-limit'}` (`t2md train
   * --time-limit`); a resume continues from there. Shared by every stage a distill run goes through.
   */
  deadline?: number;
  /** Called when the run stops early, just before it saves. */
  onStopping?: (reason: 'signal' | 'time-limit') => void;
  /** A quick quality check every few steps of every stage, on the EMA weights (metrics.jsonl). */
  evaluate?: StageEvaluator;
  /**
   * The command line that started this run (the CLI passes its own): recorded in `t2md.train`'s
   * `commands`, after those of the runs it continues, in the checkpoint and the model file.
   */
  command?: string;
}

/** Options of `distillStudent`. */
export interface DistillOptions<S = unknown> extends RunOptions<S> {
  /** The teacher model file (`t2md train`'s `DIR/model.safetensors`), or that `DIR`. */
  teacher: string;
  /** One stage, or `'all'` (forcing → distill → adapt → finetune). Default `'all'`. */
  stage?: Exclude<StageName, 'teacher'> | 'all';
  /**
   * Copy the teacher's shared weights into the new student (default true, T2MD's initialisation).
   * `false` is the "hybrid trained from scratch" ablation: every weight keeps its fresh init (the frozen
   * caption encoder still comes from the teacher file, like T5 in the paper). Recorded in `t2md.train`.
   */
  teacherInit?: boolean;
  /** Changes to the preset's student (layout, Mamba settings) for a new run; stored with the preset. */
  student?: StudentChanges;
}

/**
 * The part of the options that is not data: the functions a run calls and its stop conditions. They go
 * to `runPlan` beside the plan.
 */
export type RunHooks<S = unknown> = Pick<
  RunOptions<S>,
  'data' | 'createEncoder' | 'onProgress' | 'signal' | 'deadline' | 'onStopping' | 'evaluate'
>;
