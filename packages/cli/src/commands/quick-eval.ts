import type { StageEvaluator } from '@t2md/distill';
import { scoreModel } from './eval.js';

/** The defaults of `--eval-prompts` and `--eval-steps`. */
export const QUICK_EVAL_DEFAULTS = { prompts: 48, steps: 10 } as const;

/** `--eval-every`, `--eval-prompts`, `--eval-steps` of `t2md train` and `t2md distill`. */
export interface QuickEvalOptions {
  evalEvery?: number;
  evalPrompts?: number;
  evalSteps?: number;
}

/**
 * The in-training check: `t2md eval`'s score (`scoreModel`: its prompt set, batching, seed 0, DPM-Solver++
 * at cfg 4.5) of the EMA weights with few steps, written to metrics.jsonl as
 * `{"eval": "geneval", "overall": x, <category>: x, ...}`. Fixed prompts and noise: the lines of one run
 * are comparable with each other and a resumed run writes the same ones.
 */
export function quickEval(o: QuickEvalOptions): StageEvaluator | undefined {
  if (o.evalEvery == null) return undefined;
  const prompts = o.evalPrompts ?? QUICK_EVAL_DEFAULTS.prompts;
  const steps = o.evalSteps ?? QUICK_EVAL_DEFAULTS.steps;
  return {
    name: 'geneval',
    every: o.evalEvery,
    // the trainer passes the prediction type the run trains, so a v model is scored as v
    run: async (trained) => {
      const s = await scoreModel(trained, { prompts, steps });
      return { overall: s.overall, ...s.categories };
    },
  };
}
