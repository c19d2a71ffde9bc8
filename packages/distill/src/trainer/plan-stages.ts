/**
 * What planning says about the stages it resolved: an image side that does not split into patches
 * (refused), and positions an init file would lose (`RunPlan.notes`).
 */
import { check } from '@t2md/core';
import type { DiTConfig } from '@t2md/dit';
import type { StageConfig, StageName } from './config.js';
import { resolutions } from './config.js';
import type { StagePlan } from './plan.js';

/** Every image side of the stage must split into whole patches of the model it trains. */
export function checkPatches(stage: StageName, cfg: StageConfig, dit: DiTConfig): void {
  const p = dit.patchSize;
  for (const { size } of resolutions(cfg)) {
    check(
      size % p === 0,
      () => `stage '${stage}' trains at ${size} px, which does not split into ${p}-px patches; use a multiple of ${p}.`,
    );
  }
}

/**
 * An init file's positional embedding is replaced by the first stage's when they differ (adapt's switch
 * to `centered` is the paper's): said aloud when the stage's kind is a preset default the caller did not
 * ask for, since outputs at the model's own size stay the same and only other sizes show it.
 */
export function initPosEmbedNotes(
  from: { path: string; config: DiTConfig },
  stages: readonly StagePlan[],
  asked: (stage: StageName) => boolean,
): string[] {
  const first = stages[0];
  const had = from.config.posEmbed ?? 'sincos';
  if (first == null || asked(first.name) || first.cfg.posEmbed === had) return [];
  return [
    `stage '${first.name}' gives the student ${first.cfg.posEmbed} positions (the stage's default), but ${from.path} has ${had} ones; set posEmbed (t2md distill --pos-embed ${had}) to keep them.`,
  ];
}
