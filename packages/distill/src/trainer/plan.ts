/**
 * A run, planned before it starts (nanoGPT's train.py settles every setting at the top, then loops):
 * `planTeacher` and `planDistill` turn what the caller asked for (options.ts) into a `RunPlan`, plain
 * data saying everything the run will do: the preset with its overrides, the stages with each one's
 * config, where the weights start, and what the files will record about where they came from. Every
 * check is made here, so a bad request fails with one sentence before anything is written. Planning
 * reads file headers (metadata), never weights. `runPlan` (run.ts) carries the plan out.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { assertInt, assertOneOf, check } from '@t2md/core';
import { type ModelFloatDtype, resolveConfig } from '@t2md/dit';
import type { TrainPrediction } from '../losses/losses.js';
import {
  DISTILL_STAGES,
  resolvePreset,
  STAGES,
  type StageConfig,
  type StageName,
  stageCfg,
  type TrainPreset,
  withOverrides,
} from './config.js';
import { continuedPreset } from './continued-preset.js';
import { checkEncoderFits, checkSameConfig, checkStudentAgrees, checkTeacherFits, trainable, withStudent } from './fits.js';
import { checkStudentWeights } from './loss-weights.js';
import {
  type CheckpointHeader,
  type InitRecord,
  isStrings,
  type Provenance,
  readCheckpointHeader,
  readModelHeader,
  type TrainState,
} from './model-file.js';
import type { DistillOptions, RunOptions, StageOverrides } from './options.js';
import { checkPatches, initPosEmbedNotes } from './plan-stages.js';
import type { TextEncoderSpec } from './types.js';

/** The files of a run's folder: the checkpoint (rewritten atomically), the metrics log, the model. */
export const CHECKPOINT_FILE = 'latest.safetensors';
export const METRICS_FILE = 'metrics.jsonl';
export const MODEL_FILE = 'model.safetensors';

/** Everything a run will do, resolved before any tensor exists (plain data). */
export interface RunPlan {
  /** `teacher` (t2md train) or `distill` (t2md distill). */
  readonly run: 'teacher' | 'distill';
  /** The folder of CHECKPOINT_FILE, METRICS_FILE, MODEL_FILE and `<stage>.safetensors`. */
  readonly out: string;
  /** The preset with the run's overrides and student changes; stored in every file the run writes. */
  readonly preset: TrainPreset;
  /** The caption encoder (a fresh teacher run builds it from this spec). */
  readonly spec: TextEncoderSpec;
  /**
   * What the trained model predicts, in every stage: the teacher stage's `prediction` (a teacher run),
   * the teacher file's (a distill run: the student inherits it). Recorded in every file the run writes.
   */
  readonly prediction: TrainPrediction;
  readonly start: RunStart;
  /** A distill run's teacher file: the frozen teacher, and the frozen caption encoder of the student. */
  readonly teacher?: string;
  /** The stages to go through, in order. */
  readonly stages: readonly StagePlan[];
  /** What the run's files record about where its weights came from (`t2md.train`). */
  readonly provenance: Provenance;
  /** Float type of the model files (checkpoints stay F32, so a resume is exact). */
  readonly modelDtype: ModelFloatDtype;
  /** The metrics lines a continued run keeps: those up to its checkpoint (a new run keeps none). */
  readonly metricsUpTo?: { readonly stage: StageName; readonly step: number };
  /** What the run will do that its caller may not expect, one sentence each (the CLI prints them as notes). */
  readonly notes?: readonly string[];
}

/**
 * Where the weights start: fresh (a distill student copies the teacher's shared weights unless
 * `provenance.teacherInit` is false), an `init` model file (EMA folded in), or the folder's checkpoint
 * (resumed at its step, or a distill run chaining from its complete earlier stage).
 */
export type RunStart =
  | { readonly from: 'fresh' }
  | { readonly from: 'init'; readonly file: string }
  | { readonly from: 'checkpoint'; readonly file: string; readonly state: TrainState };

export interface StagePlan {
  readonly name: StageName;
  readonly cfg: StageConfig;
  /** Continue the checkpoint's stage: its step, optimiser moments, EMA, RNG and data position. */
  readonly resume: boolean;
  /**
   * A distill stage the checkpoint finished: no step runs; its model files are written from the
   * checkpoint, and a `steps` below its recorded length becomes the recorded length. (A finished
   * teacher stage goes through its loop instead, which takes no step and writes every file again.)
   */
  readonly complete: boolean;
}

/** The plan of `trainTeacher`: the `teacher` stage, from fresh weights, an init file or the checkpoint. */
export function planTeacher<S>(opts: RunOptions<S>): RunPlan {
  checkRequest(opts);
  // What is on disk: the folder's checkpoint, or the init file (never both: readFolder refuses that).
  const ckpt = readFolder(opts, 'teacher', ['teacher']);
  const from = opts.init != null ? readInit(opts.init) : undefined;
  const folder = common(opts, ckpt);
  let preset: TrainPreset;
  let spec: TextEncoderSpec;
  let start: RunStart = { from: 'fresh' };
  let provenance: Provenance = lineage(ckpt?.state, opts.command);
  if (ckpt) {
    const st = ckpt.state;
    check(st.run === 'teacher', () => `${ckpt.path} is a ${st.run} checkpoint, not a teacher one; resume it as a distillation run.`);
    preset = continuedPreset(ckpt.preset, samePrediction(ckpt.preset, opts.overrides), {
      resuming: true,
      stages: ['teacher'],
      where: ckpt.path,
    });
    spec = ckpt.spec;
    start = { from: 'checkpoint', file: ckpt.path, state: st };
  } else {
    // A new run: the preset defaults to the init file's
    preset = withOverrides(resolvePreset(opts.preset ?? from?.preset), opts.overrides);
    if (from != null) {
      checkSameConfig(from.config, preset.teacher, from.path, `preset '${preset.name}''s teacher`, []);
      // without an asked prediction the file's is kept; with one (v from an epsilon file) it is the fine-tune's
      const asked = opts.overrides?.teacher?.prediction;
      const prediction = asked ?? trainable(from.prediction, from.path, 'init');
      if (prediction !== predictionOf(preset)) preset = withOverrides(preset, { teacher: { prediction } });
      checkEncoderFits(from.spec, preset, opts.vocabSize, from.path);
      spec = from.spec;
      start = { from: 'init', file: from.path };
      provenance = lineage(from.state, opts.command, from.record);
    } else {
      resolveConfig(preset.teacher); // createDiT's checks, before anything is written
      spec = { vocabSize: opts.vocabSize, maxLength: preset.captionTokens, ...preset.textEncoder, seed: preset.seed };
    }
  }
  const cfg = stageCfg(preset, 'teacher', opts.steps, ckpt?.state);
  checkPatches('teacher', cfg, preset.teacher);
  const stages = [{ name: 'teacher' as const, cfg, resume: ckpt != null, complete: false }];
  const prediction = cfg.prediction ?? 'epsilon';
  return { run: 'teacher', preset, spec, prediction, start, stages, provenance, ...folder };
}

/**
 * The plan of `distillStudent`. Without `resume`, an existing checkpoint in `out` whose stage is
 * complete and comes before the requested one is the starting point (so `--stage forcing` then
 * `--stage distill` into the same directory chain); any other existing checkpoint is refused.
 */
export function planDistill<S>(opts: DistillOptions<S>): RunPlan {
  const which = opts.stage ?? 'all';
  check(
    which === 'all' || DISTILL_STAGES.includes(which),
    () => `stage must be one of ${[...DISTILL_STAGES, 'all'].join(', ')}, got ${JSON.stringify(which)}.`,
  );
  const asked = which === 'all' ? [...DISTILL_STAGES] : [which];
  check(
    opts.teacherInit == null || typeof opts.teacherInit === 'boolean',
    () => `teacherInit must be true or false, got ${String(opts.teacherInit)}.`,
  );
  const teacherPath = resolveModelFile(opts.teacher);
  checkRequest(opts);
  const ckpt = readFolder(opts, 'distill', asked);
  const teacher = readModelHeader(teacherPath);
  const from = opts.init != null ? readInit(opts.init) : undefined;
  const preset = ckpt
    ? continuedPreset(ckpt.preset, opts.overrides, { resuming: opts.resume === true, stages: asked, where: ckpt.path })
    : withStudent(withOverrides(resolvePreset(opts.preset ?? from?.preset ?? teacher.preset ?? 'tiny'), opts.overrides), opts.student);
  checkTeacherFits(teacher.config, preset, teacherPath);
  // The student predicts what its teacher does (L_mse's target, L_pseudo's label): it inherits the type.
  const prediction = trainable(teacher.prediction, teacherPath, 'teacher');
  for (const other of [from, ckpt]) {
    check(
      other == null || other.prediction === prediction,
      () =>
        `${other?.path} holds a ${other?.prediction}-predicting student, but the teacher ${teacherPath} predicts ${prediction}; distil from its own teacher.`,
    );
  }
  if (from != null) {
    // adapt and finetune change the positional embedding: a student file from after them still fits
    checkSameConfig(from.config, preset.student, from.path, `preset '${preset.name}''s student`, ['posEmbed']);
    check(
      JSON.stringify(from.spec) === JSON.stringify(teacher.spec),
      () => `${from.path} was distilled with another caption encoder than the teacher ${teacherPath} has; pass its own teacher.`,
    );
  }
  // A continued run's student was made by the first run (or the init file's): its provenance carries over.
  const made = ckpt?.state ?? from?.state;
  const teacherInit = made ? made.teacherInit !== false : opts.teacherInit !== false;
  check(
    opts.teacherInit == null || opts.teacherInit === teacherInit,
    () =>
      `${ckpt ? ckpt.path : from?.path} holds a student ${teacherInit ? 'initialised from the teacher' : 'trained from scratch'}; a continued run keeps it: keep teacherInit as it was, or start a new run${ckpt ? ' in another out folder' : ' without init'}.`,
  );
  const provenance: Provenance = {
    teacher: teacherPath,
    teacherInit,
    // an init run has no checkpoint to continue (readFolder refuses one)
    ...(from != null ? lineage(from.state, opts.command, from.record) : lineage(ckpt?.state, opts.command)),
    ...(isStrings(teacher.state?.commands) ? { teacherCommands: teacher.state.commands } : {}),
  };
  let start: RunStart = from != null ? { from: 'init', file: from.path } : { from: 'fresh' };
  if (ckpt) {
    check(ckpt.state.run === 'distill', () => `${ckpt.path} is a ${ckpt.state.run} checkpoint; distil into another out folder.`);
    checkStudentAgrees(ckpt.config, opts.student, ckpt.path);
    start = { from: 'checkpoint', file: ckpt.path, state: ckpt.state };
  } else if (from == null) {
    resolveConfig(preset.student); // createDiT's checks (a bad --layout), before anything is written
  }
  // Stages before the checkpoint's are done; the checkpoint's own stage is resumed, or complete.
  const st = ckpt?.state;
  const stages = asked
    .filter((s) => st == null || STAGES.indexOf(s) >= STAGES.indexOf(st.stage))
    .map((name) => {
      const cfg = stageCfg(preset, name, opts.steps, st?.stage === name ? st : undefined);
      checkPatches(name, cfg, preset.student);
      const resume = opts.resume === true && st?.stage === name;
      return { name, cfg, resume, complete: resume && st != null && st.step >= cfg.steps };
    });
  // the ε-only weightings (pseudoX0Cap, x0WeightCap) against the type the student inherits
  for (const s of stages) checkStudentWeights(s.name, s.cfg, prediction, teacherPath);
  const notes = from != null ? initPosEmbedNotes(from, stages, (stage) => opts.overrides?.[stage]?.posEmbed != null) : [];
  const plan: RunPlan = {
    run: 'distill',
    preset,
    spec: teacher.spec,
    prediction,
    start,
    teacher: teacherPath,
    stages,
    provenance,
    ...common(opts, ckpt),
  };
  return notes.length > 0 ? { ...plan, notes } : plan;
}

/** The teacher stage's prediction type in `p` (absent: epsilon). */
function predictionOf(p: TrainPreset): TrainPrediction {
  return p.stages.teacher.prediction ?? 'epsilon';
}

/**
 * A resume's overrides without a `prediction` equal to the checkpoint's own: a checkpoint saved
 * before the field has none, and `--prediction epsilon` asks for what it already does.
 */
function samePrediction(saved: TrainPreset, o: StageOverrides | undefined): StageOverrides | undefined {
  const asked = o?.teacher?.prediction;
  if (asked == null || asked !== predictionOf(saved) || saved.stages.teacher.prediction === asked) return o;
  const { prediction: _, ...teacher } = o!.teacher!;
  return { ...o, teacher };
}

/** The options every run checks before it reads a file. */
function checkRequest<S>(opts: RunOptions<S>): void {
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
}

/** What the two plans share: the folder, the model files' float type, the metrics lines kept. */
function common<S>(opts: RunOptions<S>, ckpt: CheckpointHeader | undefined): Pick<RunPlan, 'out' | 'modelDtype' | 'metricsUpTo'> {
  const upTo = ckpt ? { metricsUpTo: { stage: ckpt.state.stage, step: ckpt.state.step } } : {};
  return { out: opts.out, modelDtype: opts.modelDtype === 'f16' ? 'F16' : 'F32', ...upTo };
}

/**
 * The checkpoint in `out` that this run continues (resume) or chains from (distill), after checking
 * that it may; none for a new run.
 */
function readFolder<S>(opts: RunOptions<S>, run: 'teacher' | 'distill', stages: StageName[]): CheckpointHeader | undefined {
  const path = join(opts.out, CHECKPOINT_FILE);
  const exists = existsSync(path);
  check(
    opts.init == null || !exists,
    () => `${opts.out} already holds a checkpoint, and init starts a new run; choose another out folder (or resume that one).`,
  );
  if (opts.resume) check(exists, () => `${path} does not exist, so there is nothing to resume; start without resume.`);
  else if (!exists) return undefined;
  const header = readCheckpointHeader(path);
  const { state } = header;
  check(
    state.format === 1 && STAGES.includes(state.stage),
    () => `${path} has an unknown training state; start a new run in another out folder.`,
  );
  const complete = state.step >= state.steps && STAGES.indexOf(state.stage) < STAGES.indexOf(stages[0]);
  if (opts.resume && run === 'distill' && state.run === 'distill') {
    check(
      stages.includes(state.stage) || complete,
      () =>
        `${path} is at stage ${state.stage} (step ${state.step}/${state.steps}); resume it at stage ${state.stage} or with stage 'all'.`,
    );
  }
  if (!opts.resume) {
    // Chaining distill stages: only from a complete, earlier stage of a distill run.
    check(
      run === 'distill' && state.run === 'distill' && complete,
      () =>
        `${opts.out} already holds a checkpoint (${state.run} run, stage ${state.stage}, step ${state.step}/${state.steps}); resume it, or choose another out folder.`,
    );
  }
  return header;
}

/**
 * What a run carries over from the run it continues (its checkpoint's state, or an init file's): that
 * run's commands, then this one's, and where the weights started (`init`, else the previous run's).
 */
function lineage(previous: Partial<TrainState> | undefined, command: string | undefined, init?: InitRecord): Provenance {
  const all = [...(previous?.commands ?? []), ...(command != null ? [command] : [])];
  const from = init ?? previous?.init;
  return { ...(all.length > 0 ? { commands: all } : {}), ...(from != null ? { init: from } : {}) };
}

/** The `init` model file's header, and the record of it the run keeps. */
function readInit(init: string) {
  const file = readModelHeader(resolveModelFile(init, 'init'));
  const st = file.state;
  const record: InitRecord = {
    file: file.path,
    ...(typeof st?.stage === 'string' ? { stage: st.stage } : {}),
    ...(typeof st?.step === 'number' ? { step: st.step } : {}),
  };
  return { ...file, state: st && { ...st, commands: isStrings(st.commands) ? st.commands : undefined }, record };
}

/** The file a `teacher` option names: a model file, or a `t2md train` output folder (its model.safetensors). */
export function resolveModelFile(path: string, what = 'teacher'): string {
  check(typeof path === 'string' && path !== '', () => `${what} must be a model file path or a t2md train output folder.`);
  if (!existsSync(path) || !statSync(path).isDirectory()) return path;
  const file = join(path, MODEL_FILE);
  check(
    existsSync(file),
    () => `${what} ${path} is a folder without model.safetensors; pass the model file, or the --out folder of a finished t2md train.`,
  );
  return file;
}
