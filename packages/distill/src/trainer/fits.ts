/**
 * Whether a file's model fits the run that reads it: an init file's DiT is the preset's and its caption
 * encoder reads the run's captions, a teacher has the shape the student's shared weights transfer from,
 * and a continued run's student is what the student changes (`StudentChanges`) ask for; a new run
 * applies those changes to its preset. Each failure is an InputError saying which field differs and
 * what to pass; and whether the trainer can train a file's prediction type.
 */
import { check } from '@t2md/core';
import { type DiTConfig, type MambaSettings, type ModelPrediction, parseLayout, resolveConfig } from '@t2md/dit';
import type { TrainPrediction } from '../losses/losses.js';
import type { TrainPreset } from './config.js';
import type { StudentChanges } from './options.js';
import type { TextEncoderSpec } from './types.js';

/**
 * An InputError naming the first field (other than `ignore`) where the file's DiT config differs from
 * the one the run wants, both resolved (defaults filled in).
 */
export function checkSameConfig(have: DiTConfig, want: DiTConfig, where: string, wantName: string, ignore: readonly string[]): void {
  const a = resolveConfig(have).config as unknown as Record<string, unknown>;
  const b = resolveConfig(want).config as unknown as Record<string, unknown>;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (ignore.includes(k)) continue;
    const x = JSON.stringify(a[k]);
    const y = JSON.stringify(b[k]);
    check(
      x === y,
      () => `${where} has ${k} ${x ?? 'unset'} but ${wantName} has ${y ?? 'unset'}; pass the preset the file was trained with.`,
    );
  }
}

/** The teacher must be the preset's teacher shape for the student's shared weights to transfer. */
export function checkTeacherFits(c: DiTConfig, p: TrainPreset, where: string): void {
  const want = p.teacher;
  for (const k of ['hiddenSize', 'patchSize', 'inChannels', 'numHeads', 'captionChannels'] as const) {
    check(
      c[k] === want[k],
      () =>
        `the teacher ${where} has ${k} ${c[k]} but preset '${p.name}' expects ${want[k]}; pass the preset the teacher was trained with.`,
    );
  }
  const depth = c.layout === want.layout;
  check(
    depth,
    () => `the teacher ${where} has layout ${c.layout} but preset '${p.name}' expects ${want.layout}; pass the matching preset.`,
  );
}

/** The init file's caption encoder must read the run's captions: same vocabulary and caption length. */
export function checkEncoderFits(spec: TextEncoderSpec, preset: TrainPreset, vocabSize: number, where: string): void {
  check(
    spec.vocabSize === vocabSize && spec.maxLength === preset.captionTokens,
    () =>
      `${where}'s caption encoder reads ${spec.maxLength} tokens of a ${spec.vocabSize}-word vocabulary, but this run has ${preset.captionTokens} of ${vocabSize}; pass the preset the file was trained with.`,
  );
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
    const had = ((have.mamba ?? {}) as Record<string, unknown>)[k];
    check(
      JSON.stringify(had) === JSON.stringify(v),
      () => `${where} holds a student with mamba.${k} ${JSON.stringify(had)}, not ${JSON.stringify(v)}; ${mend}`,
    );
  }
}

/** `p` with its student changed by `changes` (checked by resolveConfig, which names a bad field). */
export function withStudent(p: TrainPreset, changes: StudentChanges | undefined): TrainPreset {
  if (changes == null) return p;
  const student: DiTConfig = {
    ...p.student,
    ...(changes.layout != null ? { layout: changes.layout } : {}),
    ...(changes.mamba != null ? { mamba: { ...(p.student.mamba ?? {}), ...changes.mamba } as MambaSettings } : {}),
  };
  return { ...p, student };
}

/** A file's prediction type, when the trainer can train it (epsilon or v); else an InputError. */
export function trainable(p: ModelPrediction, path: string, what: string): TrainPrediction {
  check(p !== 'sample', () => `${what} ${path} predicts x0 ('sample'); the trainer trains epsilon or v models, pass one of those.`);
  return p;
}
