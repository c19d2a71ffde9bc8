import type { StageEvaluator } from '@t2md/distill';
import { CATEGORIES, evalPrompts, evaluate, generate } from '@t2md/shapes';

/** `--eval-every`, `--eval-prompts`, `--eval-steps` of `t2md train` and `t2md distill`. */
export interface QuickEvalOptions {
  evalEvery?: number;
  evalPrompts?: number;
  evalSteps?: number;
}

/** Prompts per model call, and the noise seed of batch b (seed 0·100003 + b): those of `t2md eval`. */
const BATCH = 25;

/**
 * The in-training check: the GenEval-style score of the EMA weights on `t2md eval`'s balanced prompt
 * set (seed 0) with few DPM-Solver++ steps at cfg 4.5, written to metrics.jsonl as
 * `{"eval": "geneval", "overall": x, <category>: x, ...}`. Fixed prompts and noise: the lines of one run
 * are comparable with each other and a resumed run writes the same ones.
 */
export function quickEval(o: QuickEvalOptions): StageEvaluator | undefined {
  if (o.evalEvery == null) return undefined;
  const prompts = evalPrompts(o.evalPrompts ?? 48, 0);
  const steps = o.evalSteps ?? 10;
  return {
    name: 'geneval',
    every: o.evalEvery,
    run: async ({ model, encoder }) => {
      const images: Float32Array[] = [];
      for (let b = 0; b * BATCH < prompts.length; b++) {
        const chunk = prompts.slice(b * BATCH, (b + 1) * BATCH);
        const out = await generate({ model, encoder, prompt: chunk.map((p) => p.caption), steps, sampler: 'dpmpp-2m', cfg: 4.5, seed: b });
        const data = (await out.images.data()) as Float32Array;
        out.images.dispose();
        const per = data.length / chunk.length;
        for (let i = 0; i < chunk.length; i++) images.push(data.slice(i * per, (i + 1) * per));
      }
      const r = await evaluate(images, prompts);
      return { overall: r.overall, ...Object.fromEntries(CATEGORIES.map((c) => [c, r.categories[c] ?? 0])) };
    },
  };
}
