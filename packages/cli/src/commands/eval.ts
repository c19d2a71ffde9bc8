import { type BackendName, initBackend } from '@t2md/core';
import type { DiT, PosEmbedKind, TextEncoderLike } from '@t2md/dit';
import type { PredictionType, SamplerName } from '@t2md/sampler';
import { CATEGORIES, type Category, type CheckResult, evalPrompts, evaluate, generate, type Prompt } from '@t2md/shapes';
import { loadModel } from '../models.js';
import { readImages } from '../png.js';
import { firstStepNotice, progress } from '../progress.js';

export interface EvalOptions {
  model: string;
  prompts: number;
  json?: boolean;
  steps: number;
  sampler: SamplerName;
  cfg: number;
  seed: number;
  /** Prompts per model call. */
  batch: number;
  size?: number;
  /** Replaces the model file's positional embedding (`--pos-embed`). */
  posEmbed?: PosEmbedKind;
  backend?: 'auto' | BackendName;
}

/** What `scoreModel` samples with; the defaults are `t2md eval`'s. */
export interface ScoreOptions {
  prompts: number;
  steps: number;
  sampler?: SamplerName;
  cfg?: number;
  seed?: number;
  /** Prompts per model call. */
  batch?: number;
  size?: number;
  /** After each sampling step: steps done over all batches, of `total`, in batch `batch` of `batches`. */
  onStep?: (p: { done: number; total: number; batch: number; batches: number }) => void;
}

/**
 * What `scoreModel` samples: a loaded model file (or the trainer's models), whose `prediction` the
 * sampler is told.
 */
export interface ScoredModel {
  model: DiT;
  encoder: TextEncoderLike;
  prediction: PredictionType;
}

/** The GenEval-style scores of a model: overall (mean of the six categories) and each category. */
export interface Scores {
  overall: number;
  categories: Record<Category, number>;
  prompts: number;
  /** Sampling time per step and prompt. */
  msPerPromptStep: number;
  /** Image side in pixels that was sampled and scored. */
  size: number;
  /** Each prompt, in the set's order, with the checker's verdict on its image (reasons, what it detected). */
  checks: { prompt: Prompt; result: CheckResult }[];
}

/**
 * One image per prompt of the fixed, category-balanced prompt set of `seed`, scored by the checker:
 * what `t2md eval` prints and `t2md train --eval-every` logs. Prompts go through the model `batch` at a
 * time (one forward per step for the whole batch, so a GPU pays its per-dispatch overhead once per batch);
 * batch b draws its noise from seed·100003 + b, so scores depend on the batch size: keep it fixed when
 * comparing models.
 */
export async function scoreModel(m: ScoredModel, o: ScoreOptions): Promise<Scores> {
  const { model, encoder, prediction } = m;
  const { steps, sampler = 'dpmpp-2m', cfg = 4.5, seed = 0, batch = 25 } = o;
  const prompts = evalPrompts(o.prompts, seed);
  const images: Float32Array[] = [];
  let ms = 0;
  let size = 0;
  const batches = Math.ceil(prompts.length / batch);
  for (let b = 0; b < batches; b++) {
    const chunk = prompts.slice(b * batch, (b + 1) * batch);
    const { images: img, msPerStep } = await generate({
      model,
      encoder,
      prediction,
      prompt: chunk.map((p) => p.caption),
      steps,
      sampler,
      cfg,
      seed: seed * 100_003 + b,
      size: o.size,
      onStep: ({ step }) => o.onStep?.({ done: b * steps + step, total: batches * steps, batch: b + 1, batches }),
    });
    size = img.shape[2] ?? 0;
    for (const im of await readImages(img)) images.push(im.data);
    ms += msPerStep * chunk.length;
  }
  const result = await evaluate(images, prompts);
  // a balanced set of ≥ 6 prompts has every category, so none is null
  const categories = Object.fromEntries(CATEGORIES.map((c: Category) => [c, result.categories[c] ?? 0])) as Record<Category, number>;
  const checks = prompts.map((prompt, i) => ({ prompt, result: result.results[i]! }));
  return { overall: result.overall, categories, prompts: prompts.length, msPerPromptStep: ms / prompts.length, size, checks };
}

/**
 * `t2md eval`: generate one image per prompt of a fixed, category-balanced prompt set and score them
 * with the GenEval-style checker (`scoreModel`). overall = mean of the six category accuracies (GenEval's rule).
 */
export async function evalCommand(opts: EvalOptions): Promise<void> {
  const info = await initBackend({ backend: opts.backend ?? 'auto' });
  const trained = loadModel(opts.model, { posEmbed: opts.posEmbed });
  // Progress counts sampling steps over all batches, on stderr (also with --json: stdout stays one document).
  const bar = progress('eval', Math.ceil(opts.prompts / opts.batch) * opts.steps, { unit: 'steps' });
  const firstStep = firstStepNotice(info.backend);
  let scores: Scores;
  try {
    scores = await scoreModel(trained, {
      ...opts,
      onStep: ({ done, batch, batches }) => {
        firstStep.done();
        bar.update(done, { batch: `${batch}/${batches}` });
      },
    });
  } finally {
    firstStep.done(false);
    bar.stop();
    trained.dispose();
  }
  const { overall, categories } = scores;
  // The contract's fields first, then what made the score: a score without its settings cannot be compared.
  const report = {
    model: opts.model,
    prompts: scores.prompts,
    overall,
    categories,
    settings: {
      steps: opts.steps,
      sampler: opts.sampler,
      cfg: opts.cfg,
      seed: opts.seed,
      batch: opts.batch,
      size: scores.size,
      posEmbed: trained.model.config.posEmbed,
      backend: info.backend,
    },
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const rows = [['category', 'score'], ...CATEGORIES.map((c: Category) => [c, categories[c].toFixed(3)]), ['overall', overall.toFixed(3)]];
  process.stdout.write(`${rows.map(([a, b]) => `${a.padEnd(18)} ${b}`).join('\n')}\n`);
  process.stdout.write(
    `${scores.prompts} prompts, ${opts.steps} ${opts.sampler} steps, cfg ${opts.cfg}, ${scores.msPerPromptStep.toFixed(1)} ms per step for batches of ${opts.batch} on ${info.backend}\n`,
  );
}
