import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BackendName, initBackend } from '@t2md/core';
import {
  type DistillOptions,
  planDistill,
  planTeacher,
  type RunHooks,
  type RunPlan,
  runPlan,
  type StageConfig,
  type TrainResult,
} from '@t2md/distill';
import { createCaptionEncoder, createDataset, VOCAB_SIZE } from '@t2md/shapes';
import { UsageError } from '../errors.js';
import { checkOutDir } from '../out-path.js';
import { interruptSignal, trainingBar } from '../progress.js';
import { type QuickEvalOptions, quickEval } from './quick-eval.js';

export interface TrainOptions extends QuickEvalOptions {
  out: string;
  preset?: string;
  steps?: number;
  resume?: boolean;
  batchSize?: number;
  lr?: number;
  backend?: 'auto' | BackendName;
  /** Minutes from the start of the command after which the run stops cleanly (see RunOptions.deadline). */
  timeLimit?: number;
  /** `--min-snr γ`: min-SNR-γ weighting of L_mse (StageConfig.minSnrGamma; 0 = off). */
  minSnr?: number;
  /** `--x0-weight Γ`: high-noise weighting of L_mse (StageConfig.x0WeightCap; 1 = off). */
  x0Weight?: number;
  /** `--prediction`: what the teacher predicts (StageConfig.prediction; t2md train only). */
  prediction?: StageConfig['prediction'];
  /** `--text-lr-scale K`: the caption encoder's learning-rate multiplier (StageConfig.textLrScale; t2md train only). */
  textLrScale?: number;
  /** Recipe overrides of the stage configs: warmupSteps, lrDecay, emaDecay, captionDropout. */
  warmup?: number;
  lrDecay?: StageConfig['lrDecay'];
  emaDecay?: number;
  captionDropout?: number;
  /** `--resolution`: the image side(s) trained at (StageConfig.resolution). */
  resolution?: StageConfig['resolution'];
  /** `--category-mix`: the data's category weights (StageConfig.dataMix). */
  categoryMix?: Record<string, number>;
  /** `--recompute`: activation recomputation (StageConfig.recompute). */
  recompute?: boolean;
  /** `--init FILE`: start from a model file's weights (RunOptions.init). */
  init?: string;
  /** `--model-dtype`: float type of the model files (RunOptions.modelDtype). */
  modelDtype?: 'f32' | 'f16';
}

export interface DistillCliOptions extends TrainOptions {
  teacher: string;
  stage?: 'forcing' | 'distill' | 'adapt' | 'finetune' | 'all';
  lambdaPseudo?: number;
  lambdaMixer?: number;
  /** `--lambda-guidance λ`: weight of L_guidance on paired batches (StageConfig.lambdaGuidance; 0 = off). */
  lambdaGuidance?: number;
  /** `--pseudo-x0 Γ`: high-noise weighting of L_pseudo (StageConfig.pseudoX0Cap; 1 = off). */
  pseudoX0?: number;
  trainable?: StageConfig['trainable'];
  /** commander's `--no-teacher-init`: true unless the flag is given. */
  teacherInit?: boolean;
  layout?: string;
  scan?: 'bi' | 'uni';
  /** `--pos-embed`: the student's positional embedding (StageConfig.posEmbed). */
  posEmbed?: StageConfig['posEmbed'];
}

const DISTILL_ORDER = ['forcing', 'distill', 'adapt', 'finetune'] as const;

/** The stage-config changes the flags ask for (only the flags given), or undefined when none. */
function stageChanges(o: DistillCliOptions | TrainOptions): Partial<StageConfig> | undefined {
  const d = o as DistillCliOptions;
  const c: Partial<Record<keyof StageConfig, unknown>> = {
    batchSize: o.batchSize,
    lr: o.lr,
    minSnrGamma: o.minSnr,
    x0WeightCap: o.x0Weight,
    prediction: o.prediction,
    textLrScale: o.textLrScale,
    warmupSteps: o.warmup,
    lrDecay: o.lrDecay,
    emaDecay: o.emaDecay,
    captionDropout: o.captionDropout,
    dataMix: o.categoryMix,
    resolution: o.resolution,
    recompute: o.recompute,
    lambdaPseudo: d.lambdaPseudo,
    lambdaMixer: d.lambdaMixer,
    lambdaGuidance: d.lambdaGuidance,
    pseudoX0Cap: d.pseudoX0,
    trainable: d.trainable,
    posEmbed: d.posEmbed,
  };
  const given = Object.entries(c).filter(([, v]) => v !== undefined);
  return given.length > 0 ? (Object.fromEntries(given) as Partial<StageConfig>) : undefined;
}

/** What teacher forcing, with no student output and no L_mse, has no use for (refused when asked for by name). */
const NOT_FORCING = ['lambdaGuidance', 'x0WeightCap'] as const;

/**
 * The library options behind `t2md distill`'s ablation flags: the stage changes go to every stage run
 * (`--lambda-guidance` and `--x0-weight` with `--stage all`: to every one but forcing, which has no
 * student output to guide and no L_mse to weight), `--layout` / `--scan` change the student,
 * `--no-teacher-init` skips the transfer. All of them end up in the checkpoint's metadata (the preset,
 * the DiT config and `t2md.train`).
 */
export function distillRunOptions(opts: DistillCliOptions): Pick<DistillOptions, 'overrides' | 'student' | 'teacherInit'> {
  const change = stageChanges(opts);
  const stages = opts.stage == null || opts.stage === 'all' ? DISTILL_ORDER : [opts.stage];
  const changeOf = (s: string): Partial<StageConfig> | undefined => {
    if (change == null || s !== 'forcing' || opts.stage === 'forcing') return change;
    const rest = Object.fromEntries(Object.entries(change).filter(([k]) => !(NOT_FORCING as readonly string[]).includes(k)));
    return Object.keys(rest).length > 0 ? rest : undefined;
  };
  const overrides = stages.flatMap((s) => {
    const c = changeOf(s);
    return c ? [[s, c] as const] : [];
  });
  const student = {
    ...(opts.layout != null ? { layout: opts.layout } : {}),
    ...(opts.scan != null ? { mamba: { bidirectional: opts.scan === 'bi' } } : {}),
  };
  return {
    ...(overrides.length > 0 ? { overrides: Object.fromEntries(overrides) } : {}),
    ...(Object.keys(student).length > 0 ? { student } : {}),
    // Only an explicit --no-teacher-init is passed: a chained run then inherits the checkpoint's choice.
    ...(opts.teacherInit === false ? { teacherInit: false } : {}),
  };
}

/** This process's command line as a shell would take it back (recorded in the checkpoint and model file). */
export function commandLine(argv: readonly string[] = process.argv.slice(2)): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['t2md', ...argv.map(quote)].join(' ');
}

/** `--init` and `--model-dtype`, as spread-in options (only those given). */
function modelFileOptions(opts: TrainOptions) {
  return {
    ...(opts.init != null ? { init: opts.init } : {}),
    ...(opts.modelDtype != null ? { modelDtype: opts.modelDtype } : {}),
  };
}

/** The in-training evaluation the flags ask for, as a spread-in option. */
function evaluator(opts: QuickEvalOptions) {
  const e = quickEval(opts);
  return e ? { evaluate: e } : {};
}

/** The shapes world plugged into the generic trainer. */
const world = { data: createDataset, createEncoder: createCaptionEncoder, vocabSize: VOCAB_SIZE };

/**
 * The paths a run writes and reads, checked before the backend starts, so that a bad one is one sentence
 * and exit 2 at once (the trainer makes `--out` with a recursive mkdir, which must only see a path that
 * can be made).
 */
function checkPaths(opts: TrainOptions & { teacher?: string }): void {
  checkOutDir('--out', opts.out);
  for (const [flag, path] of [
    ['--teacher', opts.teacher],
    ['--init', opts.init],
  ] as const) {
    if (path != null && path !== '' && !existsSync(path)) {
      throw new UsageError(`${flag} ${path} does not exist; pass a model file that t2md train or distill wrote (or its --out folder).`);
    }
  }
}

/**
 * `--eval-every` belongs to the command, not to the run: a `--resume` without it scores nothing. When the
 * run being resumed did score itself, say so once, so that a resumed block does not lose its curve unseen.
 */
function noteQuickEvalOnResume(what: 'train' | 'distill', opts: TrainOptions): void {
  if (!opts.resume || opts.evalEvery != null) return;
  const metrics = join(opts.out, 'metrics.jsonl');
  if (!existsSync(metrics) || !readFileSync(metrics, 'utf8').includes('"eval":"geneval"')) return;
  process.stderr.write(
    `t2md ${what}: note: this run scored itself with --eval-every before; pass --eval-every (and --eval-prompts, --eval-steps) again to keep scoring it.\n`,
  );
}

/**
 * Runs `plan`, made before this starts the backend: the plan reads the options and the files' headers
 * (an existing checkpoint, --init, --teacher), so every refusal of them is the one sentence of exit 2,
 * with no backend line before it and no backend started.
 */
async function run<S>(what: 'train' | 'distill', plan: RunPlan, hooks: RunHooks<S>, backend?: string, timeLimit?: number) {
  // The limit counts from the command's start: building the models and compiling shaders are part of a
  // time-boxed run's budget.
  const started = performance.now();
  const deadline = timeLimit != null ? started + timeLimit * 60_000 : undefined;
  const info = await initBackend({ backend: (backend ?? 'auto') as 'auto' });
  process.stderr.write(`t2md ${what}: backend ${info.backend}${info.adapter ? ` (${info.adapter.description})` : ''}\n`);
  const bar = trainingBar();
  const interrupt = interruptSignal();
  let result: TrainResult;
  try {
    result = await runPlan(plan, {
      ...hooks,
      signal: interrupt.signal,
      onStopping: () => interrupt.saving(),
      ...(deadline != null ? { deadline } : {}),
      onProgress: (p) => bar.update(p),
    });
  } finally {
    bar.stop();
    interrupt.dispose();
  }
  if (result.aborted) {
    const minutes = ((performance.now() - started) / 60_000).toFixed(1);
    const why = result.stopped === 'time-limit' ? `reached the time limit (${minutes} min)` : 'interrupted';
    process.stderr.write(
      `t2md ${what}: ${why} at ${result.stage} step ${result.step}; checkpoint ${result.checkpoint}${result.model ? `, model ${result.model}` : ''}; continue with --resume\n`,
    );
    // the time limit is a planned stop (exit 0); a signal is not (130, as a shell reports Ctrl-C)
    process.exitCode = result.stopped === 'time-limit' ? 0 : 130;
    return;
  }
  // NaN: no step ran, because the checkpoint had already finished every stage asked for.
  const loss = Number.isNaN(result.loss) ? 'nothing left to train in the checkpoint' : `loss ${result.loss.toFixed(4)}`;
  process.stdout.write(
    `${what} done: ${result.stage} step ${result.step}, ${loss}\n  checkpoint ${result.checkpoint}\n${result.model ? `  model      ${result.model}\n` : ''}`,
  );
}

/** What `t2md train` and `t2md distill` hand the trainer alike: the folder, preset, length, model files, world, check and command line. */
function runOptions(opts: TrainOptions) {
  return {
    out: opts.out,
    preset: opts.preset,
    steps: opts.steps,
    resume: opts.resume,
    ...modelFileOptions(opts),
    ...world,
    ...evaluator(opts),
    command: commandLine(),
  };
}

/** `t2md train`: train the teacher DiT (and its caption encoder) on the shapes world. */
export async function trainCommand(opts: TrainOptions): Promise<void> {
  checkPaths(opts);
  const change = stageChanges(opts);
  const options = { ...runOptions(opts), ...(change ? { overrides: { teacher: change } } : {}) };
  const plan = planTeacher(options);
  noteQuickEvalOnResume('train', opts); // after the plan: a refused run gets its one sentence alone
  await run('train', plan, options, opts.backend, opts.timeLimit);
}

/** `t2md distill`: teacher forcing → feature distillation → adaptation → fine-tuning of the hybrid student. */
export async function distillCommand(opts: DistillCliOptions): Promise<void> {
  checkPaths(opts);
  const options = { ...runOptions(opts), teacher: opts.teacher, stage: opts.stage, ...distillRunOptions(opts) };
  const plan = planDistill(options);
  noteQuickEvalOnResume('distill', opts); // after the plan: a refused run gets its one sentence alone
  for (const note of plan.notes ?? []) process.stderr.write(`t2md distill: note: ${note}\n`);
  await run('distill', plan, options, opts.backend, opts.timeLimit);
}
