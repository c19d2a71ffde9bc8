/**
 * How a run's options change its preset (the ablation knobs: per-stage overrides such as λ, lr and
 * batch size, the student's layout and scan direction), and the checks that keep a resumed or chained
 * run honest: a checkpoint's settings are never changed silently.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { check, InputError } from '@t2md/core';
import { type DiTConfig, type MambaSettings, parseLayout } from '@t2md/dit';
import { STAGES, type StageConfig, type StageName, type TrainPreset } from './config.js';

/** Per-stage config changes (`RunOptions.overrides`). */
export type StageOverrides = Partial<Record<StageName, Partial<StageConfig>>>;

/**
 * Changes to the preset's student for a new distillation run: the block layout (e.g. all-Mamba
 * `'(HM-WM)x4'` for the "no self-attention" ablation) and Mamba settings (e.g. `{bidirectional: false}`
 * for the unidirectional-scan ablation).
 */
export interface StudentChanges {
  readonly layout?: string;
  readonly mamba?: Partial<MambaSettings>;
}

/** The file a `teacher` option names: a model file, or a `t2md train` output folder (its model.safetensors). */
export function resolveModelFile(path: string, what = 'teacher'): string {
  check(typeof path === 'string' && path !== '', () => `${what} must be a model file path or a t2md train output folder.`);
  if (!existsSync(path) || !statSync(path).isDirectory()) return path;
  const file = join(path, 'model.safetensors');
  check(
    existsSync(file),
    () => `${what} ${path} is a folder without model.safetensors; pass the model file, or the --out folder of a finished t2md train.`,
  );
  return file;
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

/** `p` with its student changed by `changes` (checked later by createDiT, which names a bad field). */
export function withStudent(p: TrainPreset, changes: StudentChanges | undefined): TrainPreset {
  if (changes == null) return p;
  const student: DiTConfig = {
    ...p.student,
    ...(changes.layout != null ? { layout: changes.layout } : {}),
    ...(changes.mamba != null ? { mamba: { ...MAMBA_OF(p.student), ...changes.mamba } as MambaSettings } : {}),
  };
  return { ...p, student };
}

const MAMBA_OF = (c: DiTConfig): Partial<MambaSettings> => c.mamba ?? {};

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
      const had = (saved.stages[s] as unknown as Record<string, unknown>)[k];
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

/** Checks that a checkpoint's student (`have`) is what `changes` ask for (a continued run cannot rebuild it). */
export function checkStudentAgrees(have: DiTConfig, changes: StudentChanges | undefined, where: string): void {
  if (changes == null) return;
  const mend = "a resumed or chained run keeps the checkpoint's student: drop the flag or start a new run in another --out.";
  if (changes.layout != null) {
    const same = parseLayout(changes.layout).join('-') === parseLayout(have.layout).join('-');
    check(same, () => `${where} holds a student with layout ${have.layout}, not ${changes.layout}; ${mend}`);
  }
  for (const [k, v] of Object.entries(changes.mamba ?? {})) {
    const had = (MAMBA_OF(have) as Record<string, unknown>)[k];
    check(
      JSON.stringify(had) === JSON.stringify(v),
      () => `${where} holds a student with mamba.${k} ${JSON.stringify(had)}, not ${JSON.stringify(v)}; ${mend}`,
    );
  }
}
