/**
 * The plan on its own: no backend, no tensors. The files a run reads are written as safetensors headers
 * with metadata only (what planning reads), so each case says what a run will do from what it finds.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, Rng } from '@t2md/core';
import { CONFIG_METADATA_KEY } from '@t2md/dit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRESET_KEY, TEXT_ENCODER_KEY, TRAIN_KEY, type TrainState } from './model-file.js';
import type { DistillOptions, RunOptions } from './options.js';
import { CHECKPOINT_FILE, MODEL_FILE, planDistill, planTeacher, type RunPlan } from './plan.js';
import { createEncoder, microPreset, syntheticData, TOKENS, VOCAB } from './test-fixtures.js';

const world = { data: syntheticData, createEncoder, vocabSize: VOCAB };
const spec = { vocabSize: VOCAB, maxLength: TOKENS, ...microPreset.textEncoder, seed: microPreset.seed };
let root: string;
let n = 0;

/** A file holding only a safetensors header: 8-byte length, then `{"__metadata__": {...}}`. */
function writeHeader(path: string, metadata: Record<string, unknown>): string {
  const text = Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, JSON.stringify(v)]));
  const json = Buffer.from(JSON.stringify({ __metadata__: text }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, Buffer.concat([len, json]));
  return path;
}

/** A model file's header: the DiT config, encoder spec, preset and `t2md.train` record. */
function modelFile(name: string, config: object, train: object): string {
  const meta = { [CONFIG_METADATA_KEY]: config, [TEXT_ENCODER_KEY]: spec, [PRESET_KEY]: microPreset, [TRAIN_KEY]: train };
  return writeHeader(join(root, name), meta);
}

/** A run folder with a checkpoint at `state` (a fresh folder each call). */
function folderWith(state: Partial<TrainState>): string {
  const out = join(root, `run-${n++}`);
  const st = { format: 1, rng: new Rng(3).state, data: null, optimizerStep: state.step, ...state };
  const config = st.run === 'teacher' ? microPreset.teacher : microPreset.student;
  writeHeader(join(out, CHECKPOINT_FILE), {
    [CONFIG_METADATA_KEY]: config,
    [TEXT_ENCODER_KEY]: spec,
    [PRESET_KEY]: microPreset,
    [TRAIN_KEY]: st,
  });
  return out;
}

const fresh = () => join(root, `fresh-${n++}`);
const teacherRun = (o: Partial<RunOptions<{ index: number }>>) => planTeacher({ ...world, preset: microPreset, out: fresh(), ...o });
const distillRun = (o: Partial<DistillOptions<{ index: number }>>) =>
  planDistill({ ...world, preset: microPreset, teacher: join(root, 'teacher'), out: fresh(), ...o });

describe('planning a run (no tensors)', () => {
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 't2md-plan-'));
    modelFile('teacher/model.safetensors', microPreset.teacher, { format: 1, stage: 'teacher', step: 8, commands: ['t2md train'] });
    modelFile('student.safetensors', microPreset.student, { format: 1, stage: 'forcing', step: 2, teacherInit: false, commands: ['s'] });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('a new teacher run: the preset with its overrides and steps, a fresh encoder spec; nothing is written', () => {
    const out = fresh();
    const plan = planTeacher({ ...world, preset: microPreset, out, steps: 3, overrides: { teacher: { lr: 0.5 } }, command: 'x' });
    expect(plan).toMatchObject({ run: 'teacher', out, spec, start: { from: 'fresh' }, provenance: { commands: ['x'] }, modelDtype: 'F32' });
    expect(plan.stages).toEqual([
      { name: 'teacher', cfg: { ...microPreset.stages.teacher, lr: 0.5, steps: 3 }, resume: false, complete: false },
    ]);
    expect(plan.preset.stages.teacher.lr).toBe(0.5);
    expect(plan.metricsUpTo).toBeUndefined();
    expect(JSON.parse(JSON.stringify(plan)) as RunPlan).toEqual(plan); // plain data
    expect(existsSync(out)).toBe(false);
    expect(teacherRun({ preset: undefined }).preset.name).toBe('tiny');
    expect(teacherRun({ modelDtype: 'f16' }).modelDtype).toBe('F16');
  });

  it('a resumed teacher keeps the checkpoint’s preset and length, and continues its lineage and metrics', () => {
    const out = folderWith({ run: 'teacher', stage: 'teacher', step: 3, steps: 8, commands: ['a'] });
    const plan = planTeacher({ ...world, preset: 'shapes', out, resume: true, command: 'b' });
    expect(plan.preset.name).toBe('micro');
    expect(plan.stages).toMatchObject([{ name: 'teacher', cfg: { steps: 8 }, resume: true }]);
    expect(plan.start).toMatchObject({ from: 'checkpoint', file: join(out, CHECKPOINT_FILE), state: { step: 3 } });
    expect(plan.provenance).toEqual({ commands: ['a', 'b'] });
    expect(plan.metricsUpTo).toEqual({ stage: 'teacher', step: 3 });
    expect(planTeacher({ ...world, out, resume: true, steps: 12 }).stages[0].cfg.steps).toBe(12);
  });

  it('a teacher from an init file: its preset by default, its encoder, and a record of it', () => {
    const init = join(root, 'teacher', MODEL_FILE);
    const plan = teacherRun({ preset: undefined, init: join(root, 'teacher'), command: 'c' });
    expect(plan.preset.name).toBe('micro');
    expect(plan.start).toEqual({ from: 'init', file: init });
    expect(plan.provenance).toEqual({ commands: ['t2md train', 'c'], init: { file: init, stage: 'teacher', step: 8 } });
  });

  it('distill --stage all from a teacher: four stages, each with its config; the teacher’s commands recorded', () => {
    const plan = distillRun({ overrides: { distill: { lambdaMixer: 0 } }, steps: 2 });
    expect(plan.stages.map((s) => [s.name, s.cfg.steps, s.resume])).toEqual([
      ['forcing', 2, false],
      ['distill', 2, false],
      ['adapt', 2, false],
      ['finetune', 2, false],
    ]);
    expect(plan.stages[1].cfg.lambdaMixer).toBe(0);
    expect(plan).toMatchObject({ run: 'distill', teacher: join(root, 'teacher', MODEL_FILE), spec, start: { from: 'fresh' } });
    expect(plan.provenance).toEqual({ teacher: join(root, 'teacher', MODEL_FILE), teacherInit: true, teacherCommands: ['t2md train'] });
    expect(distillRun({ student: { layout: 'HM-WM-HM' } }).preset.student.layout).toBe('HM-WM-HM');
  });

  it('continued distillations: chained from a complete stage, resumed mid-stage, resumed with nothing left', () => {
    const chained = distillRun({ out: folderWith({ run: 'distill', stage: 'forcing', step: 2, steps: 2 }), stage: 'distill' });
    expect(chained.stages).toMatchObject([{ name: 'distill', resume: false, complete: false }]);
    expect(chained.start).toMatchObject({ from: 'checkpoint', state: { stage: 'forcing' } });
    const mid = folderWith({ run: 'distill', stage: 'distill', step: 1, steps: 3 });
    const resumed = distillRun({ out: mid, resume: true });
    expect(resumed.stages.map((s) => [s.name, s.cfg.steps, s.resume, s.complete])).toEqual([
      ['distill', 3, true, false],
      ['adapt', microPreset.stages.adapt.steps, false, false],
      ['finetune', microPreset.stages.finetune.steps, false, false],
    ]);
    expect(resumed.metricsUpTo).toEqual({ stage: 'distill', step: 1 });
    expect(distillRun({ out: mid, resume: true, stage: 'distill', steps: 1 }).stages).toMatchObject([{ resume: true, complete: true }]);
  });

  it('a student from an init file keeps how it was made', () => {
    const plan = distillRun({ init: join(root, 'student.safetensors'), stage: 'distill', command: 'd' });
    expect(plan.start).toEqual({ from: 'init', file: join(root, 'student.safetensors') });
    expect(plan.provenance).toMatchObject({ teacherInit: false, commands: ['s', 'd'], init: { stage: 'forcing', step: 2 } });
    expect(plan.notes).toBeUndefined(); // same positions as the stage's: nothing to say
  });

  it("says when the first stage's default positions replace an init file's, unless they were asked for", () => {
    const file = join(root, 'student-interp.safetensors');
    modelFile(
      'student-interp.safetensors',
      { ...microPreset.student, posEmbed: 'interpolated' },
      { format: 1, stage: 'finetune', step: 2, teacherInit: false },
    );
    const note = distillRun({ init: file, stage: 'distill' }).notes;
    expect(note).toEqual([
      `stage 'distill' gives the student sincos positions (the stage's default), but ${file} has interpolated ones; set posEmbed (t2md distill --pos-embed interpolated) to keep them.`,
    ]);
    expect(distillRun({ init: file, stage: 'distill', overrides: { distill: { posEmbed: 'sincos' } } }).notes).toBeUndefined();
    expect(distillRun({ init: file, stage: 'distill', overrides: { distill: { posEmbed: 'interpolated' } } }).notes).toBeUndefined();
  });

  it('refuses what cannot be meant with the existing messages, before anything is written', () => {
    const teacherCkpt = folderWith({ run: 'teacher', stage: 'teacher', step: 3, steps: 8 });
    writeFileSync(join(root, 'junk.safetensors'), 'not a safetensors file');
    const cases: [() => unknown, RegExp][] = [
      [() => teacherRun({ resume: true }), /does not exist, so there is nothing to resume/],
      [() => teacherRun({ out: teacherCkpt }), /already holds a checkpoint .*; resume it, or choose another out folder/],
      [() => teacherRun({ out: teacherCkpt, resume: true, overrides: { teacher: { lr: 9 } } }), /--resume keeps the checkpoint's settings/],
      [() => teacherRun({ preset: 'huge' }), /unknown preset "huge"/],
      [() => teacherRun({ init: join(root, 'student.safetensors') }), /has layout .* but preset 'micro''s teacher/],
      [() => teacherRun({ init: join(root, 'teacher'), vocabSize: 99 }), /caption encoder reads 6 tokens of a 10-word vocabulary/],
      [() => distillRun({ preset: 'tiny' }), /has hiddenSize 32 but preset 'tiny' expects 64/],
      [() => distillRun({ teacher: join(root, 'none.safetensors') }), /does not exist; pass the model file/],
      [
        () => distillRun({ teacher: join(root, 'junk.safetensors') }),
        /junk.safetensors is not a model or checkpoint file \(Invalid safetensors/,
      ],
      [() => distillRun({ out: teacherCkpt, resume: true }), /is a teacher checkpoint; distil into another out folder/],
      [() => distillRun({ init: join(root, 'student.safetensors'), teacherInit: true }), /trained from scratch; a continued run keeps it/],
      [() => distillRun({ overrides: { finetune: { batchSize: 0 } } }), /stage 'finetune' batchSize/],
      [() => teacherRun({ overrides: { teacher: { dataMix: { position: -1 } } } }), /stage 'teacher' dataMix.position must be a finite/],
      [() => teacherRun({ overrides: { teacher: { dataMix: [2] as never } } }), /stage 'teacher' dataMix must be an object of weights/],
    ];
    for (const [plan, message] of cases) {
      expect(plan, String(message)).toThrow(InputError);
      expect(plan).toThrow(message);
    }
  });
});
