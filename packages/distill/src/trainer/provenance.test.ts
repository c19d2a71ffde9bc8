import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@t2md/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distillStudent, trainTeacher } from './pipeline.js';
import { createEncoder, microPreset, syntheticData, trainStateOf, VOCAB } from './test-fixtures.js';

const common = { preset: microPreset, data: syntheticData, createEncoder, vocabSize: VOCAB };
let root: string;

describe('commands in the model files (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    root = mkdtempSync(join(tmpdir(), 't2md-provenance-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('a run records its command after those of the runs it continues; a student also records its teacher’s', async () => {
    const teacher = join(root, 'teacher');
    await trainTeacher({ ...common, out: teacher, steps: 2, command: 't2md train --steps 2' });
    await trainTeacher({ ...common, out: teacher, steps: 3, resume: true, command: 't2md train --resume --steps 3' });
    expect(trainStateOf(join(teacher, 'model.safetensors')).commands).toEqual(['t2md train --steps 2', 't2md train --resume --steps 3']);
    expect(trainStateOf(join(teacher, 'latest.safetensors')).commands).toEqual(['t2md train --steps 2', 't2md train --resume --steps 3']);
    const student = join(root, 'student');
    await distillStudent({ ...common, teacher, out: student, stage: 'forcing', steps: 1, command: 't2md distill --stage forcing' });
    await distillStudent({ ...common, teacher, out: student, stage: 'distill', steps: 1, command: 't2md distill --stage distill' });
    const st = trainStateOf(join(student, 'model.safetensors'));
    expect(st.commands).toEqual(['t2md distill --stage forcing', 't2md distill --stage distill']);
    expect(st.teacherCommands).toEqual(['t2md train --steps 2', 't2md train --resume --steps 3']);
    // without a command (library use) nothing is recorded
    const bare = join(root, 'bare');
    await trainTeacher({ ...common, out: bare, steps: 1 });
    expect(trainStateOf(join(bare, 'model.safetensors')).commands).toBeUndefined();
  });
});
