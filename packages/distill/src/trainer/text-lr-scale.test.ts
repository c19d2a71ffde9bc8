/**
 * `StageConfig.textLrScale` (`t2md train --text-lr-scale K`): the caption encoder's weights step at lr·K,
 * the DiT's at lr. Checked on the micro teacher: one step moves the encoder K times as far and the DiT
 * alike; a bad K, or a K for a stage that trains no encoder, is refused; the value is stored with the
 * run's preset and kept by a resume.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, initBackend, Rng } from '@t2md/core';
import { relErr } from '@t2md/core/testing';
import { createDiT, TEXT_ENCODER_PREFIX } from '@t2md/dit';
import { alphasCumprod } from '@t2md/sampler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkStageConfig, type StageConfig } from './config.js';
import { readModelHeader } from './model-file.js';
import { trainTeacher } from './pipeline.js';
import { createTrainStep, disposeStepResult } from './step.js';
import { createEncoder, microPreset, perturb, syntheticData, VOCAB } from './test-fixtures.js';

/** Each trained weight's change after `steps` teacher steps from the same seed, with `textLrScale` K. */
async function moves(k: number, steps: number): Promise<{ encoder: Float32Array[]; dit: Float32Array[]; scaled: string[] }> {
  const p = microPreset;
  const encoder = createEncoder({ vocabSize: VOCAB, maxLength: p.captionTokens, ...p.textEncoder, seed: p.seed });
  const model = createDiT(p.teacher);
  perturb(model, 1);
  // decay on, so the encoder's decay at lr·K·wd is part of what scales
  const cfg: StageConfig = { ...p.stages.teacher, weightDecay: 0.05, captionDropout: 0, textLrScale: k };
  const stepper = createTrainStep({
    stage: 'teacher',
    cfg,
    models: { model, encoder },
    alphasCumprod: alphasCumprod(p.schedule),
    prediction: 'epsilon',
  });
  const names = Object.keys(stepper.trainable);
  const before = await Promise.all(names.map((n) => stepper.trainable[n].data()));
  const data = syntheticData({ seed: 5, resolution: cfg.resolution as number, batchSize: cfg.batchSize, maxTokens: p.captionTokens });
  const rng = new Rng(9);
  for (let i = 0; i < steps; i++) disposeStepResult(stepper.step(await data.next(), rng, 2e-3));
  const after = await Promise.all(names.map((n) => stepper.trainable[n].data()));
  const delta = names.map((_, i) => Float32Array.from(after[i]!, (x, j) => x - before[i]![j]!));
  const isEncoder = (i: number) => names[i]!.startsWith(TEXT_ENCODER_PREFIX);
  const scaled = Object.keys(stepper.optimizer.lrScale);
  stepper.dispose();
  model.dispose();
  encoder.dispose();
  return { encoder: delta.filter((_, i) => isEncoder(i)), dit: delta.filter((_, i) => !isEncoder(i)), scaled };
}

const norm = (parts: Float32Array[]) => Math.sqrt(parts.reduce((a, d) => a + d.reduce((b, x) => b + x * x, 0), 0));
const flat = (parts: Float32Array[]) => Float32Array.from(parts.flatMap((d) => Array.from(d)));

let root: string;

describe('StageConfig.textLrScale (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    root = mkdtempSync(join(tmpdir(), 't2md-textlr-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('one step moves the caption encoder K times as far (update and decay) and the DiT alike', async () => {
    const [one, two] = [await moves(1, 1), await moves(2, 1)];
    expect(one.scaled).toEqual([]); // K = 1: the plain update, no scale vectors
    expect(two.scaled.length).toBeGreaterThan(0);
    expect(two.scaled.every((n) => n.startsWith(TEXT_ENCODER_PREFIX))).toBe(true);
    expect(two.scaled.length).toBe(one.encoder.length); // every encoder weight, no DiT one
    // Adam's first step is lr·K·(m̂/(√v̂+ε) + wd·p): linear in K, element by element
    expect(norm(one.encoder)).toBeGreaterThan(0);
    expect(
      relErr(
        flat(two.encoder),
        flat(one.encoder).map((x) => 2 * x),
      ),
    ).toBeLessThan(1e-3);
    // the DiT's gradient at the first step does not depend on the encoder's rate
    expect(relErr(flat(two.dit), flat(one.dit))).toBeLessThan(1e-5);
  }, 30_000);

  it('over several steps the encoder still moves further at K = 2', async () => {
    const [one, two] = [await moves(1, 4), await moves(2, 4)];
    expect(norm(two.encoder) / norm(one.encoder)).toBeGreaterThan(1.5);
  }, 30_000);

  it('refuses a K that is not a finite number > 0, and a K ≠ 1 where no caption encoder trains', () => {
    const teacher = microPreset.stages.teacher;
    for (const k of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => checkStageConfig('teacher', { ...teacher, textLrScale: k })).toThrow(
        new InputError(`stage 'teacher' textLrScale must be a finite number > 0 (1 = the DiT's rate), got ${String(k)}.`),
      );
    }
    expect(() => checkStageConfig('teacher', { ...teacher, textLrScale: 3 })).not.toThrow();
    for (const [stage, cfg] of [
      ['distill', microPreset.stages.distill],
      ['adapt', microPreset.stages.adapt], // trains 'all', but the encoder is frozen after the teacher
      ['teacher', { ...teacher, trainable: 'mixers' }],
    ] as const) {
      expect(() => checkStageConfig(stage, { ...cfg, textLrScale: 2 })).toThrow(
        new InputError(
          `stage '${stage}' does not train the caption encoder (only stage 'teacher' with trainable 'all' does), so its textLrScale 2 would do nothing; leave it at 1.`,
        ),
      );
      expect(() => checkStageConfig(stage, { ...cfg, textLrScale: 1 })).not.toThrow();
    }
  });

  it('a teacher run stores K with its preset, and a resume keeps it', async () => {
    const common = { preset: microPreset, data: syntheticData, createEncoder, vocabSize: VOCAB, out: join(root, 'run') };
    await expect(trainTeacher({ ...common, overrides: { teacher: { textLrScale: 0 } } })).rejects.toThrow(
      /textLrScale must be a finite number > 0/,
    );
    await trainTeacher({ ...common, overrides: { teacher: { steps: 2, textLrScale: 2 } } });
    expect(readModelHeader(join(root, 'run', 'model.safetensors')).preset?.stages.teacher.textLrScale).toBe(2);
    await expect(trainTeacher({ ...common, resume: true, steps: 3, overrides: { teacher: { textLrScale: 3 } } })).rejects.toThrow(
      /was made with stage 'teacher' textLrScale 2, not 3; --resume keeps the checkpoint's settings/,
    );
  }, 30_000);
});
