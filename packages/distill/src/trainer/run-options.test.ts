/**
 * The ablation knobs of a distillation run: a student from scratch (no teacher transfer), a changed
 * student (unidirectional scan, all-Mamba layout), λ and lr overrides reaching the stage config and the
 * checkpoint, a teacher given as its folder, and continued runs that refuse changed settings.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, initBackend } from '@t2md/core';
import type { MambaMixer } from '@t2md/dit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeCheckpoint, loadCheckpoint } from '../checkpoint/checkpoint.js';
import { withOverrides } from './config.js';
import { continuedPreset } from './continued-preset.js';
import { checkStudentAgrees, withStudent } from './fits.js';
import { loadTrainedModel, PRESET_KEY, TRAIN_KEY } from './model-file.js';
import { distillStudent, trainTeacher } from './pipeline.js';
import { resolveModelFile } from './plan.js';
import { createEncoder, microPreset, syntheticData, VOCAB } from './test-fixtures.js';

const common = { preset: microPreset, data: syntheticData, createEncoder, vocabSize: VOCAB };
let root: string;
let teacherDir: string;

/** Weights (under `model.`) and metadata of a file. */
async function read(path: string) {
  const ckpt = loadCheckpoint(path);
  const w: Record<string, number[]> = {};
  for (const [n, t] of Object.entries(ckpt.weights)) if (n.startsWith('model.')) w[n.slice(6)] = Array.from(await t.data());
  const meta = ckpt.metadata;
  disposeCheckpoint(ckpt);
  return { w, meta };
}

describe('ablation options of distillStudent (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    root = mkdtempSync(join(tmpdir(), 't2md-ablation-'));
    teacherDir = join(root, 'teacher');
    await trainTeacher({ ...common, out: teacherDir, overrides: { teacher: { steps: 4, lr: 3e-3 } } });
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('teacherInit false leaves the student unequal to the teacher on shared weights; the default copies them', async () => {
    const teacher = await read(join(teacherDir, 'model.safetensors'));
    const lambdas = { lambdaPseudo: 0, lambdaMixer: 0 };
    // The teacher given as its folder (t2md train's --out), not the file.
    await distillStudent({
      ...common,
      out: join(root, 'init'),
      teacher: teacherDir,
      stage: 'distill',
      overrides: { distill: { steps: 1, ...lambdas } },
    });
    await distillStudent({
      ...common,
      out: join(root, 'scratch'),
      teacher: teacherDir,
      stage: 'distill',
      teacherInit: false,
      overrides: { distill: { steps: 1, ...lambdas } },
    });
    const init = await read(join(root, 'init', 'model.safetensors'));
    const scratch = await read(join(root, 'scratch', 'model.safetensors'));
    // Shared and not trained in the distill stage (mixers only): the embedders, MLPs, cross-attention.
    const shared = Object.keys(teacher.w).filter((n) => n in init.w && !/^blocks\.\d+\.(attn|mixer)\./.test(n));
    expect(shared.length).toBeGreaterThan(10);
    let differ = 0;
    for (const n of shared) {
      expect(init.w[n], n).toEqual(teacher.w[n]);
      if (scratch.w[n].some((v, i) => v !== teacher.w[n][i])) differ++;
    }
    // Zero-initialised weights (adaLN, final projection) are equal by construction; the rest must differ.
    expect(differ).toBeGreaterThan(shared.length / 2);
    expect(JSON.parse(scratch.meta[TRAIN_KEY])).toMatchObject({ teacherInit: false, teacher: join(teacherDir, 'model.safetensors') });
    expect(JSON.parse(init.meta[TRAIN_KEY])).toMatchObject({ teacherInit: true });
    const ckpt = await read(join(root, 'scratch', 'latest.safetensors'));
    expect(JSON.parse(ckpt.meta[TRAIN_KEY]).teacherInit).toBe(false);
  });

  it('λ, lr and batch size reach the stage config and the checkpoint; a unidirectional all-Mamba student loads back', async () => {
    const out = join(root, 'uni');
    const student = { layout: 'HM-WM-HM', mamba: { bidirectional: false } };
    const overrides = { forcing: { steps: 1, lr: 2e-3, batchSize: 3, dataMix: { odd: 2 } } };
    // the stage's dataMix reaches the data source as its mix
    const mixes: unknown[] = [];
    const data: typeof syntheticData = (o) => {
      mixes.push(o.mix);
      return syntheticData(o);
    };
    await distillStudent({ ...common, data, out, teacher: teacherDir, stage: 'forcing', student, overrides });
    expect(mixes).toEqual([{ odd: 2 }]);
    // Chained into the same folder: the distill stage's λ changes apply; the student must agree.
    const distill = { steps: 1, lambdaPseudo: 0.25, lambdaMixer: 0 };
    await distillStudent({ ...common, out, teacher: teacherDir, stage: 'distill', student, overrides: { distill } });
    const { meta } = await read(join(out, 'latest.safetensors'));
    const preset = JSON.parse(meta[PRESET_KEY]);
    expect(preset.stages.distill).toMatchObject(distill);
    expect(preset.stages.forcing).toMatchObject(overrides.forcing);
    expect(preset.student).toMatchObject(student);
    const m = loadTrainedModel(join(out, 'model.safetensors'), createEncoder);
    expect(m.model.config.layout).toBe('HM-WM-HM');
    expect(m.model.config.mamba.bidirectional).toBe(false);
    for (const b of m.model.blocks) expect((b.mixer as MambaMixer).bidirectional).toBe(false);
    expect(Object.keys(m.model.weights()).some((n) => n.includes('merge'))).toBe(false);
    m.dispose();
    // A continued run may not change the student or a finished stage's settings.
    await expect(
      distillStudent({ ...common, out, teacher: teacherDir, stage: 'adapt', student: { mamba: { bidirectional: true } } }),
    ).rejects.toThrow(/mamba\.bidirectional false, not true/);
    await expect(
      distillStudent({ ...common, out, teacher: teacherDir, stage: 'adapt', overrides: { forcing: { lr: 1 } } }),
    ).rejects.toThrow(/stage 'forcing' lr 0\.002, not 1; stage 'forcing' is already complete/);
  });

  it('helpers: overrides merge, resume refuses changes, students compare by parsed layout', () => {
    const p = withStudent(withOverrides(microPreset, { distill: { lambdaMixer: 0 } }), {
      layout: '(HM-WM)x2',
      mamba: { bidirectional: false },
    });
    expect(p.stages.distill.lambdaMixer).toBe(0);
    expect(p.stages.distill.lambdaPseudo).toBe(microPreset.stages.distill.lambdaPseudo);
    expect(p.student.layout).toBe('(HM-WM)x2');
    expect(p.student.mamba).toMatchObject({ ...microPreset.student.mamba, bidirectional: false });
    expect(() => withOverrides(microPreset, { bogus: {} } as never)).toThrow(/unknown stage 'bogus'/);
    const where = 'ckpt';
    expect(continuedPreset(p, { distill: { lambdaMixer: 0 } }, { resuming: true, stages: ['distill'], where })).toEqual(p);
    expect(() => continuedPreset(p, { distill: { lr: 9 } }, { resuming: true, stages: ['distill'], where })).toThrow(
      /--resume keeps the checkpoint's settings/,
    );
    expect(continuedPreset(p, { distill: { lr: 9 } }, { resuming: false, stages: ['distill'], where }).stages.distill.lr).toBe(9);
    // a checkpoint saved before an optional setting existed has it at its default, not at a different value
    const old = { ...p, stages: { ...p.stages, teacher: { ...p.stages.teacher, textLrScale: undefined, minSnrGamma: undefined } } };
    const same = { teacher: { textLrScale: 1, minSnrGamma: 0 } };
    expect(continuedPreset(old, same, { resuming: true, stages: ['teacher'], where }).stages.teacher).toEqual(old.stages.teacher);
    expect(() => continuedPreset(old, { teacher: { textLrScale: 2 } }, { resuming: true, stages: ['teacher'], where })).toThrow(
      "ckpt was made with stage 'teacher' textLrScale 1, not 2; --resume keeps the checkpoint's settings: drop the flag or start a new run in another --out.",
    );
    expect(() => checkStudentAgrees(p.student, { layout: 'HM-WM-HM-WM' }, where)).not.toThrow();
    expect(() => checkStudentAgrees(p.student, { layout: 'SA-WM' }, where)).toThrow(InputError);
    expect(() => resolveModelFile(root)).toThrow(/is a folder without model\.safetensors/);
    expect(resolveModelFile(teacherDir)).toBe(join(teacherDir, 'model.safetensors'));
  });
});
