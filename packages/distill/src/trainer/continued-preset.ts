/**
 * The preset of a run that continues a checkpoint (plan.ts): the saved one, with only the overrides a
 * resume or a chained stage may apply.
 */
import { check, InputError } from '@t2md/core';
import { STAGES, type StageConfig, type StageName, type TrainPreset, withOverrides } from './config.js';
import type { StageOverrides } from './options.js';

/** Stage settings that change memory and time but not a number of the run: a resume may switch them. */
const RESUME_MAY_CHANGE: ReadonlySet<string> = new Set(['recompute']);

/**
 * What an optional stage setting means when a checkpoint lacks it (saved before the field existed):
 * its documented default, so that passing that default on a resume is not a change.
 */
const ABSENT_MEANS: Readonly<Record<string, unknown>> = {
  minSnrGamma: 0,
  x0WeightCap: 1,
  pseudoX0Cap: 1,
  textLrScale: 1,
  lambdaGuidance: 0,
};

/**
 * The preset of a run that continues a checkpoint. Resuming keeps every setting: an override that
 * differs from the checkpoint's is an InputError. Chaining (a later stage into the same folder) applies
 * the overrides of the stages it runs; those of completed stages must agree.
 */
export function continuedPreset(
  saved: TrainPreset,
  overrides: StageOverrides | undefined,
  opts: { resuming: boolean; stages: readonly StageName[]; where: string },
): TrainPreset {
  if (overrides == null) return saved;
  const apply: StageOverrides = {};
  for (const [s, o] of Object.entries(overrides) as [StageName, Partial<StageConfig>][]) {
    check(STAGES.includes(s), () => `overrides has unknown stage '${s}'; stages are ${STAGES.join(', ')}.`);
    if (!opts.resuming && opts.stages.includes(s)) {
      apply[s] = o;
      continue;
    }
    for (const [k, v] of Object.entries(o ?? {})) {
      const had = (saved.stages[s] as unknown as Record<string, unknown>)[k] ?? ABSENT_MEANS[k];
      if (opts.resuming && RESUME_MAY_CHANGE.has(k)) {
        apply[s] = { ...apply[s], [k]: v };
        continue;
      }
      if (JSON.stringify(had) !== JSON.stringify(v)) {
        throw new InputError(
          `${opts.where} was made with stage '${s}' ${k} ${JSON.stringify(had)}, not ${JSON.stringify(v)}; ${
            opts.resuming ? "--resume keeps the checkpoint's settings" : `stage '${s}' is already complete`
          }: drop the flag or start a new run in another --out.`,
        );
      }
    }
  }
  return withOverrides(saved, apply);
}
