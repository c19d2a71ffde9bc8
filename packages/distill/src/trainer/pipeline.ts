/**
 * The two runs the CLI starts: `trainTeacher` (`t2md train`) and `distillStudent` (`t2md distill`).
 * Both own `DIR/latest.safetensors` (the checkpoint), `DIR/metrics.jsonl`, and write the finished
 * model to `DIR/model.safetensors` (plus `DIR/<stage>.safetensors` for each completed stage).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { assertInt, assertOneOf, check, InputError, Rng, type RngState } from '@t2md/core';
import {
  CONFIG_METADATA_KEY,
  createDiT,
  type DiT,
  type DiTConfig,
  loadWeightsInto,
  MODEL_PREFIX,
  type ModelFloatDtype,
  resolveConfig,
  transferFromTeacher,
} from '@t2md/dit';
import { alphasCumprod } from '@t2md/sampler';
import type * as tf from '@tensorflow/tfjs-core';
import { disposeCheckpoint, type LoadedCheckpoint, loadCheckpoint, saveCheckpoint } from '../checkpoint/checkpoint.js';
import { type MetricsRecord, truncateMetrics } from '../checkpoint/metrics.js';
import {
  checkStageConfig,
  DISTILL_STAGES,
  getPreset,
  resolutions,
  STAGES,
  type StageConfig,
  type StageName,
  type TrainPreset,
} from './config.js';
import { CHECKPOINT_FILE, METRICS_FILE, runStageLoop, type StageStart } from './loop.js';
import {
  fromCheckpoint,
  loadTrainedModel,
  PRESET_KEY,
  saveTrainedModel,
  TEXT_ENCODER_KEY,
  TEXT_ENCODER_PREFIX,
  TRAIN_KEY,
} from './model-file.js';
import {
  checkStudentAgrees,
  continuedPreset,
  resolveModelFile,
  type StageOverrides,
  type StudentChanges,
  withOverrides,
  withStudent,
} from './run-options.js';
import { needsTeacher, type StageModels } from './stage-step.js';
import type {
  DataFactory,
  StageEvaluator,
  TextEncoderFactory,
  TextEncoderLike,
  TextEncoderSpec,
  TrainProgress,
  TrainResult,
} from './types.js';

export const MODEL_FILE = 'model.safetensors';

/** The training state a checkpoint records under `t2md.train`. */
export interface TrainState {
  format: 1;
  /** `teacher` for t2md train, `distill` for t2md distill. */
  run: 'teacher' | 'distill';
  stage: StageName;
  /** Optimiser steps done in `stage`. */
  step: number;
  /** The stage's planned steps (`step >= steps`: the stage is complete). */
  steps: number;
  /** Trainer RNG and data-source positions after `step`. */
  rng: RngState;
  data: unknown;
  optimizerStep: number;
  /** The teacher file a distill run read. */
  teacher?: string;
  /** Whether the student started from the teacher's shared weights (distill runs; absent means true). */
  teacherInit?: boolean;
  /** The command lines of this run and of the runs it continues (`RunOptions.command`), oldest first. */
  commands?: string[];
  /** A distill run: the commands the teacher file records. */
  teacherCommands?: string[];
  /**
   * The model file the run started from (`RunOptions.init`) and where that file's run stood; its
   * commands come first in `commands`.
   */
  init?: InitRecord;
}

/** Where an `init` run's weights came from. */
export interface InitRecord {
  file: string;
  stage?: string;
  step?: number;
}

/** What a run records about where its weights came from (in `t2md.train`, checkpoint and model files). */
type Provenance = Pick<TrainState, 'teacher' | 'teacherInit' | 'commands' | 'teacherCommands' | 'init'>;

/**
 * What a run carries over from the run it continues (its checkpoint's state, or an init file's): that
 * run's commands, then this one's, and where the weights started (`init`, else the previous run's).
 */
function lineage(
  previous: Partial<TrainState> | undefined,
  command: string | undefined,
  init?: InitRecord,
): Pick<TrainState, 'commands' | 'init'> {
  const all = [...(previous?.commands ?? []), ...(command != null ? [command] : [])];
  const from = init ?? previous?.init;
  return { ...(all.length > 0 ? { commands: all } : {}), ...(from != null ? { init: from } : {}) };
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

/** Trains the teacher DiT and the caption encoder with the plain denoising loss (stage `teacher`). */
export async function trainTeacher<S>(opts: RunOptions<S>): Promise<TrainResult> {
  const ctx = openRun(opts, 'teacher');
  try {
    let preset: TrainPreset;
    let model: DiT;
    let encoder: TextEncoderLike;
    let spec: TextEncoderSpec;
    let start: StageStart | undefined;
    let provenance: Provenance = lineage(ctx.state, opts.command);
    if (ctx.ckpt) {
      const st = ctx.state!;
      check(st.run === 'teacher', () => `${ctx.ckptPath} is a ${st.run} checkpoint, not a teacher one; resume it as a distillation run.`);
      preset = continuedPreset(ctx.preset!, opts.overrides, { resuming: true, stages: ['teacher'], where: ctx.ckptPath });
      const loaded = fromCheckpoint(ctx.ckpt, opts.createEncoder, ctx.ckptPath, { ema: false });
      model = loaded.model;
      encoder = loaded.encoder;
      spec = loaded.spec;
      start = startFrom(ctx.ckpt, st);
    } else if (opts.init != null) {
      const from = openInit(opts.createEncoder, opts.init);
      try {
        preset = withOverrides(resolvePreset(opts.preset ?? from.model.preset), opts.overrides);
        checkSameConfig(from.model.model.config, preset.teacher, from.path, `preset '${preset.name}''s teacher`, []);
        checkEncoderFits(from.model.spec, preset, opts.vocabSize, from.path);
      } catch (err) {
        from.model.dispose();
        throw err;
      }
      ({ model, encoder, spec } = from.model);
      provenance = lineage(from.state, opts.command, from.record);
    } else {
      preset = withOverrides(resolvePreset(opts.preset), opts.overrides);
      spec = encoderSpec(preset, opts.vocabSize);
      model = createDiT(preset.teacher);
      encoder = opts.createEncoder(spec);
    }
    try {
      const cfg = stageCfg(preset, 'teacher', opts.steps, ctx.state);
      const models: StageModels = { model, encoder };
      const res = await runStage(opts, ctx, preset, 'teacher', cfg, models, spec, start, provenance);
      return res;
    } finally {
      model.dispose();
      encoder.dispose();
    }
  } finally {
    ctx.dropCheckpoint();
  }
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
 * Distils the teacher into the hybrid student. Without `resume`, an existing checkpoint in `out` whose
 * stage is complete and comes before the requested one is the starting point (so `--stage forcing`
 * then `--stage distill` into the same directory chain); any other existing checkpoint is refused.
 */
export async function distillStudent<S>(opts: DistillOptions<S>): Promise<TrainResult> {
  const which = opts.stage ?? 'all';
  check(
    which === 'all' || DISTILL_STAGES.includes(which),
    () => `stage must be one of ${[...DISTILL_STAGES, 'all'].join(', ')}, got ${JSON.stringify(which)}.`,
  );
  const stages = which === 'all' ? [...DISTILL_STAGES] : [which];
  check(
    opts.teacherInit == null || typeof opts.teacherInit === 'boolean',
    () => `teacherInit must be true or false, got ${String(opts.teacherInit)}.`,
  );
  const teacherPath = resolveModelFile(opts.teacher);
  const ctx = openRun(opts, 'distill', stages);
  let teacherFile: ReturnType<typeof loadTrainedModel> | undefined;
  let from: InitFile | undefined;
  let student: DiT | undefined;
  try {
    teacherFile = loadTrainedModel(teacherPath, opts.createEncoder, { ema: true });
    if (opts.init != null) from = openInit(opts.createEncoder, opts.init);
    const preset: TrainPreset = ctx.preset
      ? continuedPreset(ctx.preset, opts.overrides, { resuming: ctx.resuming, stages, where: ctx.ckptPath })
      : withStudent(
          withOverrides(resolvePreset(opts.preset ?? from?.model.preset ?? teacherFile.preset ?? 'tiny'), opts.overrides),
          opts.student,
        );
    checkTeacherFits(teacherFile.model.config, preset, teacherPath);
    if (from != null) {
      // adapt and finetune change the positional embedding: a student file from after them still fits
      checkSameConfig(from.model.model.config, preset.student, from.path, `preset '${preset.name}''s student`, ['posEmbed']);
      check(
        JSON.stringify(from.model.spec) === JSON.stringify(teacherFile.spec),
        () => `${from!.path} was distilled with another caption encoder than the teacher ${teacherPath} has; pass its own teacher.`,
      );
    }
    // A continued run's student was made by the first run (or the init file's): its provenance carries over.
    const made = ctx.state ?? from?.state;
    const teacherInit = made ? made.teacherInit !== false : opts.teacherInit !== false;
    check(
      opts.teacherInit == null || opts.teacherInit === teacherInit,
      () =>
        `${ctx.state ? ctx.ckptPath : from?.path} holds a student ${teacherInit ? 'initialised from the teacher' : 'trained from scratch'}; a continued run keeps it: keep teacherInit as it was, or start a new run${ctx.state ? ' in another out folder' : ' without init'}.`,
    );
    const teacherState = parseTrainState(teacherFile.metadata);
    const provenance: Provenance = {
      teacher: teacherPath,
      teacherInit,
      // an init run has no checkpoint to continue (openRun refuses one)
      ...(from != null ? lineage(from.state, opts.command, from.record) : lineage(ctx.state, opts.command)),
      ...(isStrings(teacherState?.commands) ? { teacherCommands: teacherState.commands } : {}),
    };
    const spec = teacherFile.spec;
    const encoder = teacherFile.encoder;
    let resumeStage: StageName | undefined;
    if (ctx.ckpt) {
      const st = ctx.state!;
      check(st.run === 'distill', () => `${ctx.ckptPath} is a ${st.run} checkpoint; distil into another out folder.`);
      const loaded = fromCheckpoint(ctx.ckpt, opts.createEncoder, ctx.ckptPath, { ema: false });
      loaded.encoder.dispose(); // the teacher file's encoder is the frozen one
      student = loaded.model;
      resumeStage = st.stage;
      checkStudentAgrees(student.config, opts.student, ctx.ckptPath);
    } else if (from != null) {
      student = from.model.model;
      from.model.encoder.dispose(); // the teacher file's encoder is the frozen one
      from = undefined;
    } else {
      student = createDiT(preset.student);
      if (teacherInit) transferFromTeacher(student, teacherFile.model);
    }
    let result: TrainResult | undefined;
    for (const stage of stages) {
      const st = ctx.state;
      const order = (s: StageName) => STAGES.indexOf(s);
      if (resumeStage != null && order(stage) < order(resumeStage)) continue;
      const cfg = stageCfg(preset, stage, opts.steps, st?.stage === stage ? st : undefined);
      const resumingThis = ctx.ckpt != null && st?.stage === stage && ctx.resuming;
      if (resumingThis && st!.step >= cfg.steps) {
        // Finished before the interruption (its weights are loaded); make sure its model files exist.
        const meta = {
          [PRESET_KEY]: JSON.stringify(preset),
          [TRAIN_KEY]: JSON.stringify({ format: 1, stage, step: st!.step, ...provenance }),
        };
        for (const f of [`${stage}.safetensors`, MODEL_FILE]) {
          await saveTrainedModel(join(opts.out, f), student, encoder, spec, ctx.ckpt!.ema, meta, modelDtype(opts));
        }
        if (st!.steps !== cfg.steps) {
          // `--resume --steps N` ended the stage early (at an interrupted run's step): record it as
          // complete, so a following stage can start from this folder.
          const c = ctx.ckpt!;
          await saveCheckpoint(
            ctx.ckptPath,
            { weights: c.weights, m: c.m, v: c.v, ema: c.ema },
            { ...c.metadata, [TRAIN_KEY]: JSON.stringify({ ...st!, steps: cfg.steps }) },
          );
        }
        ctx.dropCheckpoint();
        continue;
      }
      // adapt / finetune: the student's positional embedding (and so its config) may change here.
      if (student.config.posEmbed !== cfg.posEmbed) student = withPosEmbed(student, cfg.posEmbed, teacherFile.model.config);
      const start = resumingThis ? startFrom(ctx.ckpt!, st!) : undefined;
      if (!resumingThis) ctx.dropCheckpoint();
      const models: StageModels = { model: student, encoder, teacher: needsTeacher(stage, cfg) ? teacherFile.model : undefined };
      result = await runStage(opts, ctx, preset, stage, cfg, models, spec, start, provenance);
      if (result.aborted) return result;
    }
    if (result == null) {
      // Everything requested was already complete in the checkpoint.
      const st = ctx.state!;
      return {
        aborted: false,
        stage: st.stage,
        step: st.step,
        checkpoint: ctx.ckptPath,
        model: join(opts.out, MODEL_FILE),
        loss: Number.NaN,
      };
    }
    return result;
  } finally {
    ctx.dropCheckpoint();
    student?.dispose();
    teacherFile?.dispose();
    from?.model.dispose();
  }
}

/** The run's directory, and the checkpoint to continue (resume) or chain from (distill). */
interface RunContext {
  ckptPath: string;
  metricsPath: string;
  ckpt?: LoadedCheckpoint;
  state?: TrainState;
  preset?: TrainPreset;
  resuming: boolean;
  dropCheckpoint(): void;
}

function openRun<S>(opts: RunOptions<S>, run: 'teacher' | 'distill', stages: StageName[] = ['teacher']): RunContext {
  check(typeof opts.out === 'string' && opts.out !== '', 'out must be a directory path.');
  if (opts.steps != null) assertInt('steps', opts.steps, 1);
  assertInt('vocabSize', opts.vocabSize, 1);
  if (opts.evaluate != null) {
    assertInt('evaluate.every', opts.evaluate.every, 1);
    check(typeof opts.evaluate.run === 'function', 'evaluate.run must be a function scoring the model.');
  }
  check(typeof opts.data === 'function', 'data must be a function creating the data source (e.g. createDataset).');
  check(typeof opts.createEncoder === 'function', 'createEncoder must be a function (e.g. createCaptionEncoder).');
  if (opts.modelDtype != null) assertOneOf('modelDtype', opts.modelDtype, ['f32', 'f16'] as const);
  if (opts.init != null) {
    check(typeof opts.init === 'string' && opts.init !== '', 'init must be a model file path.');
    check(
      opts.resume !== true,
      () => `init starts a new run from a model file, and resume continues ${opts.out}'s checkpoint; pass one of them.`,
    );
  }
  mkdirSync(opts.out, { recursive: true });
  const ckptPath = join(opts.out, CHECKPOINT_FILE);
  const metricsPath = join(opts.out, METRICS_FILE);
  const ctx: RunContext = {
    ckptPath,
    metricsPath,
    resuming: opts.resume === true,
    dropCheckpoint() {
      if (this.ckpt) disposeCheckpoint(this.ckpt);
      this.ckpt = undefined;
    },
  };
  const exists = existsSync(ckptPath);
  check(
    opts.init == null || !exists,
    () => `${opts.out} already holds a checkpoint, and init starts a new run; choose another out folder (or resume that one).`,
  );
  if (opts.resume) {
    check(exists, () => `${ckptPath} does not exist, so there is nothing to resume; start without resume.`);
  } else if (!exists) {
    // A run killed before its first checkpoint may have left metric lines: a fresh start drops them.
    truncateMetrics(metricsPath, () => false);
    return ctx;
  }
  const ckpt = loadCheckpoint(ckptPath);
  ctx.ckpt = ckpt;
  try {
    const state = parseMeta<TrainState>(ckpt.metadata[TRAIN_KEY], `${ckptPath}'s '${TRAIN_KEY}' metadata`);
    const preset = parseMeta<TrainPreset>(ckpt.metadata[PRESET_KEY], `${ckptPath}'s '${PRESET_KEY}' metadata`);
    check(
      state.format === 1 && STAGES.includes(state.stage),
      () => `${ckptPath} has an unknown training state; start a new run in another out folder.`,
    );
    if (opts.resume && run === 'distill' && state.run === 'distill') {
      const ok = stages.includes(state.stage) || (state.step >= state.steps && STAGES.indexOf(state.stage) < STAGES.indexOf(stages[0]));
      check(
        ok,
        () =>
          `${ckptPath} is at stage ${state.stage} (step ${state.step}/${state.steps}); resume it at stage ${state.stage} or with stage 'all'.`,
      );
    }
    if (!opts.resume) {
      // Chaining distill stages: only from a complete, earlier stage of a distill run.
      const chain =
        run === 'distill' &&
        state.run === 'distill' &&
        state.step >= state.steps &&
        STAGES.indexOf(state.stage) < STAGES.indexOf(stages[0]);
      check(
        chain,
        () =>
          `${opts.out} already holds a checkpoint (${state.run} run, stage ${state.stage}, step ${state.step}/${state.steps}); resume it, or choose another out folder.`,
      );
    }
    ctx.state = state;
    ctx.preset = preset;
    // Lines logged after the checkpoint by a run that died later are dropped, so the file matches an
    // uninterrupted run.
    truncateMetrics(metricsPath, (r: MetricsRecord) => {
      const rs = STAGES.indexOf((r.stage as StageName) ?? state.stage);
      const cs = STAGES.indexOf(state.stage);
      return rs < cs || (rs === cs && r.step <= state.step);
    });
  } catch (err) {
    ctx.dropCheckpoint();
    throw err;
  }
  return ctx;
}

async function runStage<S>(
  opts: RunOptions<S>,
  ctx: RunContext,
  preset: TrainPreset,
  stage: StageName,
  cfg: StageConfig,
  models: StageModels,
  spec: TextEncoderSpec,
  start: StageStart | undefined,
  provenance: Provenance,
): Promise<TrainResult> {
  const stageIndex = STAGES.indexOf(stage);
  const first = resolutions(cfg)[0].size;
  const dataState = start?.data;
  const data = opts.data({
    seed: preset.dataSeed,
    resolution: first,
    batchSize: cfg.batchSize,
    maxTokens: preset.captionTokens,
    ...(dataState !== undefined ? { state: dataState as S } : {}),
  });
  const begin: StageStart = start ?? { step: 0, rng: new Rng(preset.seed + stageIndex) };
  const presetJson = JSON.stringify(preset);
  const outcome = await runStageLoop({
    dir: opts.out,
    stage,
    cfg,
    models,
    data: data as never,
    alphasCumprod: alphasCumprod(preset.schedule),
    start: begin,
    onProgress: opts.onProgress,
    signal: opts.signal,
    ...(opts.deadline != null ? { deadline: opts.deadline } : {}),
    ...(opts.onStopping != null ? { onStopping: opts.onStopping } : {}),
    ...(opts.evaluate != null ? { evaluate: opts.evaluate } : {}),
    onLoaded: () => ctx.dropCheckpoint(),
    metadata: ({ step, rng, data: dataPos, optimizerStep }) => {
      const state: TrainState = {
        format: 1,
        run: stage === 'teacher' ? 'teacher' : 'distill',
        stage,
        step,
        steps: cfg.steps,
        rng: rng.state,
        data: dataPos ?? null,
        optimizerStep,
        ...provenance,
      };
      return {
        [CONFIG_METADATA_KEY]: JSON.stringify(models.model.config),
        [TEXT_ENCODER_KEY]: JSON.stringify(spec),
        [PRESET_KEY]: presetJson,
        [TRAIN_KEY]: JSON.stringify(state),
      };
    },
  });
  try {
    const modelPath = join(opts.out, MODEL_FILE);
    if (outcome.aborted) {
      // A stopped run still leaves a model to sample (its EMA weights so far); the metadata says the
      // stage is unfinished, and `--resume` continues it from the checkpoint.
      const partial = {
        [PRESET_KEY]: presetJson,
        [TRAIN_KEY]: JSON.stringify({ format: 1, stage, step: outcome.step, steps: cfg.steps, stopped: outcome.stopped, ...provenance }),
      };
      await saveTrainedModel(modelPath, models.model, models.encoder, spec, outcome.ema, partial, modelDtype(opts));
      return {
        aborted: true,
        ...(outcome.stopped ? { stopped: outcome.stopped } : {}),
        stage,
        step: outcome.step,
        checkpoint: ctx.ckptPath,
        model: modelPath,
        loss: outcome.loss,
      };
    }
    const meta = {
      [PRESET_KEY]: presetJson,
      [TRAIN_KEY]: JSON.stringify({ format: 1, stage, step: outcome.step, ...provenance }),
    };
    const dtype = modelDtype(opts);
    await saveTrainedModel(join(opts.out, `${stage}.safetensors`), models.model, models.encoder, spec, outcome.ema, meta, dtype);
    await saveTrainedModel(modelPath, models.model, models.encoder, spec, outcome.ema, meta, dtype);
    return { aborted: false, stage, step: outcome.step, checkpoint: ctx.ckptPath, model: modelPath, loss: outcome.loss };
  } finally {
    outcome.dispose();
  }
}

/** The resume point of a checkpoint's stage: step, RNG, optimiser moments, EMA, data position. */
function startFrom(ckpt: LoadedCheckpoint, st: TrainState): StageStart {
  return {
    step: st.step,
    rng: new Rng(st.rng),
    optimizer: { t: st.optimizerStep, m: ckpt.m, v: ckpt.v },
    ema: ckpt.ema,
    data: st.data ?? undefined,
  };
}

function stageCfg(preset: TrainPreset, stage: StageName, steps: number | undefined, st: TrainState | undefined): StageConfig {
  const base = preset.stages[stage];
  // On resume without --steps, the checkpoint's planned length stands.
  const cfg = { ...base, steps: steps ?? st?.steps ?? base.steps };
  checkStageConfig(stage, cfg);
  return cfg;
}

function resolvePreset(p: string | TrainPreset | undefined): TrainPreset {
  if (p == null) return getPreset('tiny');
  if (typeof p === 'string') return getPreset(p);
  check(typeof p === 'object' && p.stages != null, 'preset must be a preset name or a TrainPreset object.');
  return p;
}

function encoderSpec(p: TrainPreset, vocabSize: number): TextEncoderSpec {
  return { vocabSize, maxLength: p.captionTokens, ...p.textEncoder, seed: p.seed };
}

/** The teacher must be the preset's teacher shape for the student's shared weights to transfer. */
function checkTeacherFits(c: DiTConfig, p: TrainPreset, where: string): void {
  const want = p.teacher;
  for (const k of ['hiddenSize', 'patchSize', 'inChannels', 'numHeads', 'captionChannels'] as const) {
    check(
      c[k] === want[k],
      () =>
        `the teacher ${where} has ${k} ${c[k]} but preset '${p.name}' expects ${want[k]}; pass the preset the teacher was trained with.`,
    );
  }
  const depth = c.layout === want.layout;
  check(
    depth,
    () => `the teacher ${where} has layout ${c.layout} but preset '${p.name}' expects ${want.layout}; pass the matching preset.`,
  );
}

/** A copy of `model` with another positional embedding (the weights move over; the old model is disposed). */
function withPosEmbed(model: DiT, posEmbed: 'sincos' | 'centered', teacher: DiTConfig): DiT {
  const baseGrid = model.config.baseGrid ?? teacher.baseGrid;
  const next = createDiT({ ...model.config, posEmbed, ...(baseGrid ? { baseGrid } : {}) });
  try {
    const w = model.weights();
    loadWeightsInto(next, w as Record<string, tf.Tensor>);
  } catch (err) {
    next.dispose();
    throw err;
  }
  model.dispose();
  return next;
}

function parseMeta<T>(text: string | undefined, where: string): T {
  if (text == null) throw new InputError(`${where} is missing; the checkpoint was not written by t2md train or distill.`);
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new InputError(`${where} is not valid JSON (${(err as Error).message}); the checkpoint is damaged.`);
  }
}

export { MODEL_PREFIX, TEXT_ENCODER_PREFIX };

/** RunOptions.modelDtype in @t2md/dit's spelling. */
function modelDtype(opts: Pick<RunOptions, 'modelDtype'>): ModelFloatDtype {
  return opts.modelDtype === 'f16' ? 'F16' : 'F32';
}

/** An `init` model file, loaded (EMA weights folded in), with what its metadata says about its run. */
interface InitFile {
  path: string;
  model: ReturnType<typeof loadTrainedModel>;
  state: Partial<TrainState> | undefined;
  record: InitRecord;
}

function openInit(createEncoder: TextEncoderFactory, init: string): InitFile {
  const path = resolveModelFile(init, 'init');
  const model = loadTrainedModel(path, createEncoder, { ema: true });
  const state = parseTrainState(model.metadata);
  const record: InitRecord = {
    file: path,
    ...(typeof state?.stage === 'string' ? { stage: state.stage } : {}),
    ...(typeof state?.step === 'number' ? { step: state.step } : {}),
  };
  return { path, model, state: state && { ...state, commands: isStrings(state.commands) ? state.commands : undefined }, record };
}

/**
 * An InputError naming the first field (other than `ignore`) where the file's DiT config differs from
 * the one the run wants, both resolved (defaults filled in).
 */
function checkSameConfig(have: DiTConfig, want: DiTConfig, where: string, wantName: string, ignore: readonly string[]): void {
  const a = resolveConfig(have).config as unknown as Record<string, unknown>;
  const b = resolveConfig(want).config as unknown as Record<string, unknown>;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (ignore.includes(k)) continue;
    const x = JSON.stringify(a[k]);
    const y = JSON.stringify(b[k]);
    check(
      x === y,
      () => `${where} has ${k} ${x ?? 'unset'} but ${wantName} has ${y ?? 'unset'}; pass the preset the file was trained with.`,
    );
  }
}

/** The init file's caption encoder must read the run's captions: same vocabulary and caption length. */
function checkEncoderFits(spec: TextEncoderSpec, preset: TrainPreset, vocabSize: number, where: string): void {
  check(
    spec.vocabSize === vocabSize && spec.maxLength === preset.captionTokens,
    () =>
      `${where}'s caption encoder reads ${spec.maxLength} tokens of a ${spec.vocabSize}-word vocabulary, but this run has ${preset.captionTokens} of ${vocabSize}; pass the preset the file was trained with.`,
  );
}

/** The `t2md.train` record of a model file's metadata, when it has a readable one. */
function parseTrainState(metadata: Record<string, string>): Partial<TrainState> | undefined {
  const raw = metadata[TRAIN_KEY];
  if (raw == null) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    return v != null && typeof v === 'object' ? (v as Partial<TrainState>) : undefined;
  } catch {
    return undefined;
  }
}

function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}
