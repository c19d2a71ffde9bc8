/**
 * Training configuration as plain data, and the `tiny` and `shapes` presets.
 *
 * A run is a sequence of stages; each stage has its own `StageConfig` (steps, learning rate, what
 * trains, which losses, which resolution). The paper states neither optimiser, learning rate nor batch
 * size; the choices here are ours and are documented in ../../README.md. Also how a run's options
 * change a preset (`resolvePreset`, `withOverrides`; a continuing run's: continued-preset.ts) and give each stage's config (`stageCfg`).
 */

import { assertInt, assertOneOf, check, InputError } from '@t2md/core';
import { type DiTConfig, POS_EMBED_KINDS, type PosEmbedKind, shapesStudent, shapesTeacher, tinyStudent, tinyTeacher } from '@t2md/dit';
import type { ScheduleConfig } from '@t2md/sampler';
import { TRAIN_PREDICTIONS, type TrainPrediction } from '../losses/losses.js';
import { checkLossWeights } from './loss-weights.js';
import type { StageOverrides } from './options.js';

/** The stages, in pipeline order. `teacher` is the plain denoising pre-training of the teacher. */
export const STAGES = ['teacher', 'forcing', 'distill', 'adapt', 'finetune'] as const;
export type StageName = (typeof STAGES)[number];
/** The distillation stages (what `t2md distill --stage all` runs, in order). */
export const DISTILL_STAGES: readonly StageName[] = ['forcing', 'distill', 'adapt', 'finetune'];

/**
 * What a stage trains:
 * - `all`: every trainable DiT weight (and, in the teacher stage, the caption encoder);
 * - `mixers`: the token mixers only (SA `blocks.N.attn.*` and Mamba `blocks.N.mixer.*`), the distill stage;
 * - `mamba`: the Mamba mixers only (`blocks.N.mixer.*`), teacher forcing.
 */
export type TrainableSet = 'all' | 'mixers' | 'mamba';

/** One resolution of a mixed-resolution stage and how often it is drawn. */
export interface ResolutionChoice {
  readonly size: number;
  readonly weight: number;
}

export interface StageConfig {
  readonly steps: number;
  /** Images per step (the data source is created with it). */
  readonly batchSize: number;
  /** Image side in pixels, or several drawn per step by weight (the finetune stage). */
  readonly resolution: number | readonly ResolutionChoice[];
  /** Peak learning rate, linear warm-up over `warmupSteps`, then constant or cosine to `minLr`. */
  readonly lr: number;
  readonly warmupSteps: number;
  readonly lrDecay: 'constant' | 'cosine';
  readonly minLr: number;
  /**
   * Learning-rate multiplier K of the caption encoder (`text_encoder.*`; `t2md train --text-lr-scale`):
   * its weights step at lr·K and decay at lr·K·wd, the DiT's at lr; warm-up and decay scale both. An
   * encoder trained from scratch may need a faster rate than the DiT to tell "left of" from "right of".
   * Only where the encoder trains (the teacher stage, `trainable: 'all'`); absent: 1.
   */
  readonly textLrScale?: number;
  /** AdamW. */
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  /** Global-norm gradient clip (0 = none). */
  readonly gradClip: number;
  readonly emaDecay: number;
  readonly trainable: TrainableSet;
  /** λ1, λ2 of L = L_mse + λ1 L_pseudo + λ2 L_mixer (0 drops the term; with every λ 0 no teacher runs). */
  readonly lambdaPseudo: number;
  readonly lambdaMixer: number;
  /** λ of L_guidance (guidance.ts, `t2md distill --lambda-guidance`): the student's CFG direction against its teacher's; absent: 0. */
  readonly lambdaGuidance?: number;
  /** Probability of replacing a caption by the null caption (classifier-free guidance training). */
  readonly captionDropout: number;
  /**
   * Min-SNR-γ weighting of L_mse (`minSnrWeights`): γ > 0 weights each sample by min(SNR_t, γ)/SNR_t;
   * 0 or absent leaves it unweighted (presets saved before the field read as 0).
   */
  readonly minSnrGamma?: number;
  /**
   * High-noise weighting of L_mse (`--x0-weight Γ`): Γ > 1 multiplies each sample's min-SNR-γ weight (else 1) by `highNoiseWeights`,
   * as `pseudoX0Cap` does L_pseudo's, so an ε model learns x_0 where SNR_t ≈ 0. 1 or absent: off. ε models only; not teacher forcing.
   */
  readonly x0WeightCap?: number;
  /**
   * High-noise weighting of L_pseudo (`highNoiseWeights`, `t2md distill --pseudo-x0 Γ`): Γ > 1 weights each sample by
   * clamp(1/SNR_t, 1, Γ), normalised to mean 1 over t, so the student matches its teacher's x_0 at the noise levels that decide
   * the layout. 1 or absent: unweighted (the paper's). An ε student's only (a v student's L_pseudo already weights high noise).
   */
  readonly pseudoX0Cap?: number;
  /**
   * What the teacher predicts (`t2md train --prediction`): `epsilon` (absent: every preset saved before
   * the field) or `v` (L_mse's target becomes v = √ᾱ_t ε − √(1 − ᾱ_t) x_0, min-SNR-γ takes its v form).
   * The teacher stage's only: the distillation stages' student predicts what its teacher file does.
   */
  readonly prediction?: TrainPrediction;
  /**
   * Relative weights of the data source's kinds of item, handed to it as `mix` (the shapes world: its
   * six categories, integer weights, unnamed ones 1). Absent: the source's own default (uniform).
   */
  readonly dataMix?: Readonly<Record<string, number>>;
  /**
   * Activation recomputation (gradient checkpointing, `t2md train|distill --recompute`): the trained
   * DiT's forward keeps only each block's input for the backward and runs the block again during it
   * (`ForwardOptions.recompute`), for about one more forward per step. The same gradients, up to float
   * rounding; the backward then holds one block's activations instead of every block's (the distill
   * step at batch 1024, 32 px: 118 GiB of device memory without it). Teacher forcing, whose loss is per
   * mixer, ignores it. A memory setting, not part of the recipe: a resume may turn it on or off.
   * Absent: off.
   */
  readonly recompute?: boolean;
  /** Student positional embedding from this stage on (`centered` from adapt on; see @t2md/dit's `gridCoordinates`). */
  readonly posEmbed: PosEmbedKind;
  /** Checkpoint every N steps (and at the end, and on abort). */
  readonly checkpointEvery: number;
  /** Append a metrics line (and read the loss back) every N steps. */
  readonly logEvery: number;
}

/** A whole training setup: models, data, noise schedule, seeds and one StageConfig per stage. */
export interface TrainPreset {
  readonly name: string;
  readonly teacher: DiTConfig;
  readonly student: DiTConfig;
  /** The caption encoder (`vocabSize` comes from the tokenizer; `maxLength` = the DiT's captionLength). */
  readonly textEncoder: { readonly dim: number; readonly layers: number; readonly heads: number; readonly mlpRatio: number };
  /** Caption tokens per image (the tokenizer pads to it; the DiT's null caption has this length). */
  readonly captionTokens: number;
  readonly schedule: ScheduleConfig;
  /** Seeds the trainer's RNG (timesteps, noise, caption dropout, resolution draws). */
  readonly seed: number;
  /** Seeds the data source. */
  readonly dataSeed: number;
  readonly stages: Readonly<Record<StageName, StageConfig>>;
}

const SCHEDULE: ScheduleConfig = Object.freeze({ kind: 'linear', betaStart: 1e-4, betaEnd: 0.02, trainSteps: 1000 });

const BASE_STAGE: Omit<StageConfig, 'steps' | 'batchSize' | 'resolution' | 'lr' | 'trainable'> = {
  warmupSteps: 0,
  lrDecay: 'constant',
  minLr: 0,
  weightDecay: 0,
  beta1: 0.9,
  beta2: 0.999,
  gradClip: 1,
  emaDecay: 0.999,
  lambdaPseudo: 0.5,
  lambdaMixer: 0.2,
  captionDropout: 0.1,
  posEmbed: 'sincos',
  checkpointEvery: 100,
  logEvery: 1,
};

/**
 * `tiny`: for tests and `npm run demo`, a minute or two per command on a CPU (wasm: about 1 s per
 * teacher step, 1.3 s per forcing/distill step, 2-3 s per adapt/finetune step). 16×16 px at patch 2
 * (8×8 tokens), the dit `tiny` presets (4 blocks 64 wide; student SA-HM-WM-HM, d_state 16), a 1-layer
 * 32-wide caption encoder. Too short to learn the world well; it proves the pipeline end to end.
 */
export const tinyPreset: TrainPreset = preset('tiny', tinyTeacher, tinyStudent, 32, 1, 16, {
  base: { batchSize: 4, checkpointEvery: 10, logEvery: 1, emaDecay: 0.99, warmupSteps: 5 },
  teacher: { steps: 40, resolution: 16, lr: 2e-3, trainable: 'all' },
  forcing: { steps: 20, resolution: 16, lr: 5e-3, trainable: 'mamba' },
  distill: { steps: 20, resolution: 16, lr: 5e-4, trainable: 'mixers' },
  adapt: { steps: 10, resolution: 24, lr: 3e-4, trainable: 'all', posEmbed: 'centered', lambdaPseudo: 0, lambdaMixer: 0 },
  finetune: {
    steps: 10,
    resolution: [
      { size: 24, weight: 0.2 },
      { size: 32, weight: 0.8 },
    ],
    lr: 2e-4,
    trainable: 'all',
    posEmbed: 'centered',
    lambdaPseudo: 0,
    lambdaMixer: 0,
    batchSize: 2,
  },
});

/**
 * `shapes`: the real default for the shapes world. 32×32 px at patch 2 (16×16 tokens), the dit
 * `shapes` presets (8 blocks 128 wide; student SA-HM-WM-HM-SA-WM-HM-WM, d_state 64), a 2-layer
 * 128-wide caption encoder. Minutes to hours on a GPU.
 *
 * The teacher, forcing and distill stages take the batches and teacher recipe measured on an H100
 * (bench/recipe.md): below batch ~256 a step is bound by the host, not the GPU; batch 512 at 1e-3 with
 * min-SNR-5 weighting and a cosine decay reached 0.64 in 22 minutes, where decaying early cost most of
 * the score. 12,000 teacher steps are about 25 H100-minutes.
 */
export const shapesPreset: TrainPreset = preset('shapes', shapesTeacher, shapesStudent, 128, 2, 16, {
  base: { batchSize: 32, checkpointEvery: 500, logEvery: 10, emaDecay: 0.999, warmupSteps: 500, weightDecay: 0.01 },
  teacher: {
    steps: 12000,
    resolution: 32,
    lr: 1e-3,
    trainable: 'all',
    batchSize: 512,
    warmupSteps: 200,
    lrDecay: 'cosine',
    minSnrGamma: 5,
  },
  forcing: { steps: 3000, resolution: 32, lr: 1e-3, trainable: 'mamba', batchSize: 256 },
  distill: { steps: 10000, resolution: 32, lr: 2e-4, trainable: 'mixers', batchSize: 256 },
  adapt: { steps: 3000, resolution: 48, lr: 1e-4, trainable: 'all', posEmbed: 'centered', lambdaPseudo: 0, lambdaMixer: 0 },
  finetune: {
    steps: 3000,
    resolution: [
      { size: 48, weight: 0.2 },
      { size: 64, weight: 0.8 },
    ],
    lr: 5e-5,
    trainable: 'all',
    posEmbed: 'centered',
    lambdaPseudo: 0,
    lambdaMixer: 0,
    batchSize: 16,
  },
});

export const TRAIN_PRESETS: Readonly<Record<string, TrainPreset>> = Object.freeze({ tiny: tinyPreset, shapes: shapesPreset });
export const PRESET_NAMES = Object.keys(TRAIN_PRESETS);

/** The preset called `name`; an unknown name is an InputError listing the presets. */
export function getPreset(name: string): TrainPreset {
  const p = TRAIN_PRESETS[name];
  if (p == null) throw new InputError(`unknown preset ${JSON.stringify(name)}; use one of ${PRESET_NAMES.join(', ')}.`);
  return p;
}

/** Checks a stage config; throws an InputError naming the field. */
export function checkStageConfig(stage: StageName, c: StageConfig): void {
  const at = `stage '${stage}'`;
  assertInt(`${at} steps`, c.steps, 0);
  assertInt(`${at} batchSize`, c.batchSize, 1);
  assertInt(`${at} checkpointEvery`, c.checkpointEvery, 1);
  assertInt(`${at} logEvery`, c.logEvery, 1);
  assertInt(`${at} warmupSteps`, c.warmupSteps, 0);
  assertOneOf(`${at} trainable`, c.trainable, ['all', 'mixers', 'mamba']);
  assertOneOf(`${at} lrDecay`, c.lrDecay, ['constant', 'cosine']);
  assertOneOf(`${at} posEmbed`, c.posEmbed, POS_EMBED_KINDS);
  for (const k of ['lr', 'minLr', 'weightDecay', 'gradClip', 'lambdaPseudo', 'lambdaMixer'] as const) {
    check(Number.isFinite(c[k]) && c[k] >= 0, () => `${at} ${k} must be a finite number >= 0, got ${String(c[k])}.`);
  }
  check(
    c.recompute == null || typeof c.recompute === 'boolean',
    () => `${at} recompute must be true or false, got ${JSON.stringify(c.recompute)}.`,
  );
  if (c.prediction != null) {
    check(
      stage === 'teacher',
      () => `${at} prediction cannot be set: a student predicts what its teacher file records; train the teacher with it instead.`,
    );
    assertOneOf(`${at} prediction`, c.prediction, TRAIN_PREDICTIONS);
  }
  const textScale = c.textLrScale ?? 1;
  check(
    Number.isFinite(textScale) && textScale > 0,
    () => `${at} textLrScale must be a finite number > 0 (1 = the DiT's rate), got ${String(textScale)}.`,
  );
  check(
    textScale === 1 || (stage === 'teacher' && c.trainable === 'all'),
    () =>
      `${at} does not train the caption encoder (only stage 'teacher' with trainable 'all' does), so its textLrScale ${textScale} would do nothing; leave it at 1.`,
  );
  for (const k of ['beta1', 'beta2', 'emaDecay', 'captionDropout'] as const) {
    check(c[k] >= 0 && c[k] < 1, () => `${at} ${k} must be in [0, 1), got ${String(c[k])}.`);
  }
  if (c.dataMix != null) {
    check(
      typeof c.dataMix === 'object' && !Array.isArray(c.dataMix),
      () => `${at} dataMix must be an object of weights, e.g. {"position": 2}.`,
    );
    const w = Object.entries(c.dataMix);
    for (const [k, v] of w) check(Number.isFinite(v) && v >= 0, () => `${at} dataMix.${k} must be a finite number >= 0, got ${String(v)}.`);
  }
  const res = resolutions(c);
  check(res.length > 0, `${at} needs at least one resolution.`);
  for (const r of res) {
    assertInt(`${at} resolution`, r.size, 1);
    check(r.weight > 0, () => `${at} resolution weights must be positive, got ${r.weight}.`);
  }
  checkLossWeights(at, stage, c); // min-SNR-γ, x0WeightCap, pseudoX0Cap, lambdaGuidance
}

/** The stage's resolutions as weighted choices. */
export function resolutions(c: StageConfig): ResolutionChoice[] {
  return typeof c.resolution === 'number' ? [{ size: c.resolution, weight: 1 }] : [...c.resolution];
}

// How a run's options make its preset (plan.ts): the preset asked for, with the run's overrides, or
// the checkpoint's for a run that continues one; and each stage's config.

/** The preset a new run asks for: a name (default `tiny`) or a preset object. */
export function resolvePreset(p: string | TrainPreset | undefined): TrainPreset {
  if (p == null) return getPreset('tiny');
  if (typeof p === 'string') return getPreset(p);
  check(typeof p === 'object' && p.stages != null, 'preset must be a preset name or a TrainPreset object.');
  return p;
}

/** `p` with `overrides` merged into its stage configs (unknown stage names are an InputError). */
export function withOverrides(p: TrainPreset, overrides: StageOverrides | undefined): TrainPreset {
  if (overrides == null) return p;
  const stages = { ...p.stages };
  for (const [s, o] of Object.entries(overrides) as [StageName, Partial<StageConfig>][]) {
    check(STAGES.includes(s), () => `overrides has unknown stage '${s}'; stages are ${STAGES.join(', ')}.`);
    stages[s] = { ...stages[s], ...o };
  }
  return { ...p, stages };
}

/** The stage's config: the preset's, with `steps`, else (resuming that stage) the checkpoint's length. */
export function stageCfg(
  preset: TrainPreset,
  stage: StageName,
  steps: number | undefined,
  st: { readonly steps: number } | undefined,
): StageConfig {
  const base = preset.stages[stage];
  const cfg = { ...base, steps: steps ?? st?.steps ?? base.steps };
  checkStageConfig(stage, cfg);
  return cfg;
}

function preset(
  name: string,
  teacher: DiTConfig,
  student: DiTConfig,
  encDim: number,
  encLayers: number,
  captionTokens: number,
  parts: { base: Partial<StageConfig> } & Record<
    StageName,
    Partial<StageConfig> & Pick<StageConfig, 'steps' | 'resolution' | 'lr' | 'trainable'>
  >,
): TrainPreset {
  // The DiT's caption width and null-caption length follow the encoder and the tokenizer's length.
  const caption = { captionChannels: encDim, captionLength: captionTokens };
  const stages = {} as Record<StageName, StageConfig>;
  for (const s of STAGES) stages[s] = Object.freeze({ ...BASE_STAGE, ...parts.base, ...parts[s] }) as StageConfig;
  return Object.freeze({
    name,
    teacher: Object.freeze({ ...teacher, ...caption }),
    student: Object.freeze({ ...student, ...caption }),
    textEncoder: Object.freeze({ dim: encDim, layers: encLayers, heads: encDim >= 64 ? 4 : 2, mlpRatio: 2 }),
    captionTokens,
    schedule: SCHEDULE,
    seed: 0,
    dataSeed: 1,
    stages: Object.freeze(stages),
  });
}
