import { type BackendName, initBackend } from '@t2md/core';
import type { SamplerName } from '@t2md/sampler';
import { CATEGORIES, type Category, evalPrompts, evaluate, generate } from '@t2md/shapes';
import { loadModel } from '../models.js';
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
  backend?: 'auto' | BackendName;
}

/**
 * `t2md eval`: generate one image per prompt of a fixed, category-balanced prompt set and score them
 * with the GenEval-style checker. overall = mean of the six category accuracies (GenEval's rule).
 */
export async function evalCommand(opts: EvalOptions): Promise<void> {
  const info = await initBackend({ backend: opts.backend ?? 'auto' });
  const trained = loadModel(opts.model);
  const prompts = evalPrompts(opts.prompts, opts.seed);
  const images: Float32Array[] = [];
  let ms = 0;
  const batches = Math.ceil(prompts.length / opts.batch);
  // Progress counts sampling steps over all batches, on stderr (also with --json: stdout stays one document).
  const bar = progress('eval', batches * opts.steps, { unit: 'steps' });
  const firstStep = firstStepNotice(info.backend);
  try {
    // Prompts go through the model `batch` at a time: one forward per step for the whole batch, so a GPU
    // pays its per-dispatch overhead once per batch rather than once per prompt. Batch b draws its noise
    // from seed·100003 + b, so scores depend on --batch; keep it fixed when comparing models.
    for (let b = 0; b * opts.batch < prompts.length; b++) {
      const chunk = prompts.slice(b * opts.batch, (b + 1) * opts.batch);
      const { images: img, msPerStep } = await generate({
        model: trained.model,
        encoder: trained.encoder,
        prompt: chunk.map((p) => p.caption),
        steps: opts.steps,
        sampler: opts.sampler,
        cfg: opts.cfg,
        seed: opts.seed * 100_003 + b,
        size: opts.size,
        onStep: ({ step }) => {
          firstStep.done();
          bar.update(b * opts.steps + step, { batch: `${b + 1}/${batches}` });
        },
      });
      const data = (await img.data()) as Float32Array;
      const per = data.length / chunk.length;
      for (let i = 0; i < chunk.length; i++) images.push(data.slice(i * per, (i + 1) * per));
      img.dispose();
      ms += msPerStep * chunk.length;
    }
  } finally {
    firstStep.done(false);
    bar.stop();
    trained.dispose();
  }
  const result = await evaluate(images, prompts);
  // --prompts ≥ 6 and a balanced set: every category is present, so none is null.
  const categories = Object.fromEntries(CATEGORIES.map((c: Category) => [c, result.categories[c] ?? 0])) as Record<Category, number>;
  const report = { model: opts.model, prompts: prompts.length, overall: result.overall, categories };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const rows = [
    ['category', 'score'],
    ...CATEGORIES.map((c: Category) => [c, categories[c].toFixed(3)]),
    ['overall', result.overall.toFixed(3)],
  ];
  process.stdout.write(`${rows.map(([a, b]) => `${a.padEnd(18)} ${b}`).join('\n')}\n`);
  process.stdout.write(
    `${prompts.length} prompts, ${opts.steps} ${opts.sampler} steps, cfg ${opts.cfg}, ${(ms / prompts.length).toFixed(1)} ms per step for batches of ${opts.batch} on ${info.backend}\n`,
  );
}
