/**
 * `init`: a new run that starts from a model file's weights (a committed model trained on in another
 * session), and `modelDtype: 'f16'` model files (what ships). With lr 0 and EMA decay 0 a step leaves
 * the weights as they were, so the run's model file must hold the init file's weights exactly.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, initBackend } from '@t2md/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTrainedModel } from './model-file.js';
import { distillStudent, trainTeacher } from './pipeline.js';
import { createEncoder, microPreset, syntheticData, trainStateOf, VOCAB } from './test-fixtures.js';

const world = { data: syntheticData, createEncoder, vocabSize: VOCAB };
const frozen = { lr: 0, emaDecay: 0 };
let root: string;
let teacherFile: string;

/** Every tensor of a model file (DiT and caption encoder) by name, as float32 values. */
async function weightsOf(path: string): Promise<Map<string, Float32Array>> {
  const m = loadTrainedModel(path, createEncoder);
  try {
    const all = { ...m.model.weights(), ...m.encoder.weights() };
    const out = new Map<string, Float32Array>();
    for (const [n, t] of Object.entries(all)) out.set(n, (await t.data()) as Float32Array);
    return out;
  } finally {
    m.dispose();
  }
}

/** The dtypes a safetensors file stores its tensors in. */
function storedDtypes(path: string): Set<string> {
  const b = readFileSync(path);
  const header = JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString()) as Record<string, { dtype?: string }>;
  return new Set(
    Object.entries(header)
      .filter(([k]) => k !== '__metadata__')
      .map(([, v]) => v.dtype!),
  );
}

describe('starting a run from a model file, and f16 model files (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    root = mkdtempSync(join(tmpdir(), 't2md-init-'));
    await trainTeacher({ ...world, preset: microPreset, out: join(root, 'teacher'), steps: 2, command: 't2md train --steps 2' });
    teacherFile = join(root, 'teacher', 'model.safetensors');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('a teacher run starts from the file’s weights, records it, and keeps the record across a resume', async () => {
    const out = join(root, 'continued');
    // no preset: the file's
    await trainTeacher({ ...world, init: teacherFile, out, steps: 1, overrides: { teacher: frozen }, command: 't2md train --init x' });
    const before = await weightsOf(teacherFile);
    const after = await weightsOf(join(out, 'model.safetensors'));
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [n, v] of before) expect(Array.from(after.get(n)!), n).toEqual(Array.from(v));
    const st = trainStateOf(join(out, 'model.safetensors'));
    expect(st.init).toEqual({ file: teacherFile, stage: 'teacher', step: 2 });
    expect(st.commands).toEqual(['t2md train --steps 2', 't2md train --init x']);
    await trainTeacher({ ...world, out, steps: 2, resume: true, command: 't2md train --resume' });
    const resumed = trainStateOf(join(out, 'model.safetensors'));
    expect(resumed.init).toEqual(st.init);
    expect(resumed.commands).toEqual(['t2md train --steps 2', 't2md train --init x', 't2md train --resume']);
  });

  it('writes f16 model files (about half the bytes, within half-precision rounding) and keeps the checkpoint f32', async () => {
    const out = join(root, 'half');
    await trainTeacher({ ...world, init: teacherFile, out, steps: 1, overrides: { teacher: frozen }, modelDtype: 'f16' });
    const half = join(out, 'model.safetensors');
    expect(storedDtypes(half)).toEqual(new Set(['F16']));
    expect(storedDtypes(join(out, 'latest.safetensors'))).toEqual(new Set(['F32']));
    expect(statSync(half).size).toBeLessThan(0.6 * statSync(teacherFile).size);
    const full = await weightsOf(teacherFile);
    const got = await weightsOf(half);
    for (const [n, v] of full) {
      const h = got.get(n)!;
      // f16 keeps 11 significant bits; below 2^-14 it is subnormal, spaced 2^-24
      for (let i = 0; i < v.length; i++) expect(Math.abs(h[i]! - v[i]!), n).toBeLessThanOrEqual(Math.abs(v[i]!) * 2 ** -11 + 2 ** -24);
    }
  });

  it('a distill run starts the student from a student file instead of the teacher, at any later stage', async () => {
    const first = join(root, 'student');
    await distillStudent({ ...world, teacher: teacherFile, out: first, stage: 'forcing', steps: 1, teacherInit: false, command: 'a' });
    const studentFile = join(first, 'model.safetensors');
    const out = join(root, 'student-continued');
    await distillStudent({
      ...world,
      teacher: teacherFile,
      init: studentFile,
      out,
      stage: 'distill',
      steps: 1,
      overrides: { distill: frozen },
      command: 'b',
    });
    const before = await weightsOf(studentFile);
    const after = await weightsOf(join(out, 'model.safetensors'));
    for (const [n, v] of before) expect(Array.from(after.get(n)!), n).toEqual(Array.from(v));
    const st = trainStateOf(join(out, 'model.safetensors'));
    expect(st.init).toEqual({ file: studentFile, stage: 'forcing', step: 1 });
    expect(st.teacherInit).toBe(false); // the file's student was made from scratch: that carries over
    expect(st.commands).toEqual(['a', 'b']);
    expect(st.teacherCommands).toEqual(['t2md train --steps 2']);
    // a student after adapt has the centred positional embedding; finetune starts from it too
    await distillStudent({ ...world, teacher: teacherFile, out: first, stage: 'adapt', steps: 1 });
    const late = join(root, 'student-late');
    await distillStudent({ ...world, teacher: teacherFile, init: studentFile, out: late, stage: 'finetune', steps: 1 });
    expect(trainStateOf(join(late, 'model.safetensors')).init).toEqual({ file: studentFile, stage: 'adapt', step: 1 });
  });

  it('refuses what cannot be meant, saying how to mend it', async () => {
    const fresh = (name: string) => join(root, name);
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => trainTeacher({ ...world, init: teacherFile, out: fresh('r1'), resume: true }), /init starts a new run.*pass one of them/],
      [
        () => trainTeacher({ ...world, init: teacherFile, out: join(root, 'teacher') }),
        /already holds a checkpoint, and init starts a new run/,
      ],
      [() => trainTeacher({ ...world, init: join(root, 'none.safetensors'), out: fresh('r2') }), /does not exist/],
      [
        () => trainTeacher({ ...world, init: join(root, 'student', 'model.safetensors'), out: fresh('r3') }),
        /has layout .* but preset 'micro''s teacher/,
      ],
      [
        () => trainTeacher({ ...world, init: teacherFile, out: fresh('r4'), modelDtype: 'f8' as 'f16' }),
        /modelDtype must be one of 'f32', 'f16'/,
      ],
      [
        () => distillStudent({ ...world, teacher: teacherFile, init: teacherFile, out: fresh('r5'), stage: 'distill' }),
        /has layout .* but preset 'micro''s student/,
      ],
    ];
    for (const [run, message] of cases) {
      const err = await run().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, String(message)).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(message);
    }
  });
});
