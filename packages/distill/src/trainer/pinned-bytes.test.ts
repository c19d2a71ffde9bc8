/**
 * Pins the bytes every kind of run writes (model files, the checkpoint, metrics.jsonl), so a change to
 * how the trainer is organised can show it changed nothing observable: same RNG stream, same maths,
 * same metadata. If one of these hashes changes, the trainer's output changed; update a pin only for a
 * change that means to alter what runs write, and say so in its commit.
 *
 * Why the bytes are the same on every run and every machine:
 * - the cpu backend is plain JavaScript on Float32Arrays, one thread, and V8's Math functions are
 *   fdlibm ports (the same bits on x86 and ARM); the data source is seeded (test-fixtures.ts);
 * - metrics.jsonl holds no wall-clock times (step, stage, losses, gradient norm, lr: checkpoint/metrics.ts);
 * - file paths are recorded in the metadata (`teacher`, `init.file`), so the runs use paths relative to
 *   a fresh temporary folder made the working directory (the forks pool gives each test file its own
 *   process), never the host's temporary-folder path.
 * Hashes are sha256, cut to 16 hex digits (64 bits: enough to see any change, short enough to read).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@t2md/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distillStudent, trainTeacher } from './pipeline.js';
import { createEncoder, microPreset, syntheticData, VOCAB } from './test-fixtures.js';
import type { TrainProgress } from './types.js';

const common = { preset: microPreset, data: syntheticData, createEncoder, vocabSize: VOCAB };
/** Short stages (the finetune stage draws its resolution: two sizes, so the draw is in the stream). */
const short = { forcing: { steps: 2 }, distill: { steps: 2 }, adapt: { steps: 1 }, finetune: { steps: 2 } };

/** Every file of `dir` (relative to the run folder) and the first 16 hex digits of its sha256. */
function hashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir).sort()) {
    out[`${dir}/${f}`] = createHash('sha256')
      .update(readFileSync(join(dir, f)))
      .digest('hex')
      .slice(0, 16);
  }
  return out;
}

/** Aborts (as Ctrl-C does) once `stage` reaches `step`; the run stops before its next step. */
function stopAt(stage: string, step: number): { signal: AbortSignal; onProgress: (p: TrainProgress) => void } {
  const ac = new AbortController();
  return {
    signal: ac.signal,
    onProgress: (p) => {
      if (p.stage === stage && p.step === step) ac.abort();
    },
  };
}

/** Taken at 1fc7c46 (before the trainer became plan → run). */
const PINNED: Record<string, Record<string, unknown>> = {
  teacher: {
    'teacher/latest.safetensors': 'a6f1408593dd57ea',
    'teacher/metrics.jsonl': 'ce5f01900273f4ad',
    'teacher/model.safetensors': 'ebed3bbaf5db0765',
    'teacher/teacher.safetensors': 'ebed3bbaf5db0765',
    'tiny/latest.safetensors': 'c74bec747a9b6395',
    'tiny/metrics.jsonl': '8eaea010f7f44656',
    'tiny/model.safetensors': '2da42a7027f8b13e',
    'tiny/teacher.safetensors': '2da42a7027f8b13e',
  },
  all: {
    'all/adapt.safetensors': 'f2a32fc567da2d86',
    'all/distill.safetensors': '0431de42998e1471',
    'all/finetune.safetensors': '81b47892f8d2b86a',
    'all/forcing.safetensors': '5d5d444f563b792c',
    'all/latest.safetensors': 'e7f1031d05f76e2c',
    'all/metrics.jsonl': '6830693771a8488d',
    'all/model.safetensors': '81b47892f8d2b86a',
  },
  resume: {
    stopped: {
      'teacher-cut/latest.safetensors': '24679fc1859be989',
      'teacher-cut/metrics.jsonl': '4780f1393dbaad05',
      'teacher-cut/model.safetensors': 'fd4dc0e2f17e569f',
    },
    stoppedAll: {
      'all-cut/forcing.safetensors': 'bd64ce9001f8bc20',
      'all-cut/latest.safetensors': '8953b2b435cdbac9',
      'all-cut/metrics.jsonl': '4dfec3417eaad9e5',
      'all-cut/model.safetensors': 'd1631e8af7dc5c77',
    },
    resumed: {
      'teacher-cut/latest.safetensors': '3937d3b95a9e9751',
      'teacher-cut/metrics.jsonl': 'ea60b0c40ea24db7',
      'teacher-cut/model.safetensors': '4d7f260aa2b4f002',
      'teacher-cut/teacher.safetensors': '4d7f260aa2b4f002',
      'all-cut/adapt.safetensors': '38735618c0c49fb9',
      'all-cut/distill.safetensors': '54ad51e4d2409ac4',
      'all-cut/finetune.safetensors': '44419cfd2cad1001',
      'all-cut/forcing.safetensors': 'bd64ce9001f8bc20',
      'all-cut/latest.safetensors': 'b79b3bd2f5ecee21',
      'all-cut/metrics.jsonl': '6830693771a8488d',
      'all-cut/model.safetensors': '44419cfd2cad1001',
      'early/forcing.safetensors': '6db6bb84414246be',
      'early/latest.safetensors': '03b477fd6edb10db',
      'early/metrics.jsonl': '7cad95a7a6b07f97',
      'early/model.safetensors': '6db6bb84414246be',
    },
  },
  init: {
    'init-teacher/latest.safetensors': 'cef13c65e202fbd0',
    'init-teacher/metrics.jsonl': 'a7f682a2fff0ad05',
    'init-teacher/model.safetensors': '3309a5161767514b',
    'init-teacher/teacher.safetensors': '3309a5161767514b',
    'init-student/distill.safetensors': '781fc4612171a9c3',
    'init-student/latest.safetensors': '78f7981af0dbf58e',
    'init-student/metrics.jsonl': '7f864f76fd491cac',
    'init-student/model.safetensors': '781fc4612171a9c3',
  },
  chain: {
    'chain/distill.safetensors': '487310c8bfc0cec0',
    'chain/forcing.safetensors': 'fd11d7178b96902d',
    'chain/latest.safetensors': 'cd59a132e4ea00c4',
    'chain/metrics.jsonl': '6e7d80f93c3d6f01',
    'chain/model.safetensors': '487310c8bfc0cec0',
    'scratch/distill.safetensors': 'f0ca656716f4956e',
    'scratch/latest.safetensors': 'af7049221d6d872e',
    'scratch/metrics.jsonl': 'b8c75c32a2045f91',
    'scratch/model.safetensors': 'f0ca656716f4956e',
  },
  edges: {
    'all-done/distill.safetensors': '7e6e9ab939e8c103',
    'all-done/latest.safetensors': 'c8afd89a59afebe5',
    'all-done/metrics.jsonl': '97261404ac3d76e3',
    'all-done/model.safetensors': '7e6e9ab939e8c103',
    'next/distill.safetensors': '3f443c3cfabb8b4f',
    'next/forcing.safetensors': 'c81286722c271e68',
    'next/latest.safetensors': '8738b1a91a73f251',
    'next/metrics.jsonl': '4ff626e29d5d71a6',
    'next/model.safetensors': '3f443c3cfabb8b4f',
    'teacher-done/latest.safetensors': 'e5053131e79afddb',
    'teacher-done/metrics.jsonl': '4780f1393dbaad05',
    'teacher-done/model.safetensors': '981b46e82d4946f0',
    'teacher-done/teacher.safetensors': '981b46e82d4946f0',
  },
};

let home: string;
let root: string;

describe('the bytes runs write are pinned (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    home = process.cwd();
    root = mkdtempSync(join(tmpdir(), 't2md-pinned-'));
    process.chdir(root);
  });
  afterAll(() => {
    process.chdir(home);
    rmSync(root, { recursive: true, force: true });
  });

  it('teacher (micro preset), and a named preset', async () => {
    await trainTeacher({ ...common, out: 'teacher', steps: 4, command: 't2md train --steps 4' });
    const tiny = { teacher: { steps: 1, batchSize: 1 } };
    await trainTeacher({ ...common, preset: 'tiny', out: 'tiny', overrides: tiny });
    expect({ ...hashes('teacher'), ...hashes('tiny') }).toEqual(PINNED.teacher);
  });

  it('distill --stage all', async () => {
    await distillStudent({ ...common, teacher: 'teacher', out: 'all', overrides: short, command: 't2md distill' });
    expect(hashes('all')).toEqual(PINNED.all);
  });

  it('--resume after a stop: a teacher, a distillation mid-stage, and a resume that ends a stage early', async () => {
    await trainTeacher({ ...common, out: 'teacher-cut', steps: 4, ...stopAt('teacher', 2), command: 'a' });
    const stopped = hashes('teacher-cut');
    await trainTeacher({ ...common, out: 'teacher-cut', steps: 5, resume: true, command: 'b' });
    await distillStudent({ ...common, teacher: 'teacher', out: 'all-cut', overrides: short, ...stopAt('distill', 1), command: 'c' });
    const stoppedAll = hashes('all-cut');
    await distillStudent({ ...common, teacher: 'teacher', out: 'all-cut', resume: true, command: 'd' });
    // stopped at forcing step 1 of 3, resumed with --steps 1: the stage is recorded as complete
    const forcing = { forcing: { steps: 3 } };
    await distillStudent({ ...common, teacher: 'teacher', out: 'early', stage: 'forcing', overrides: forcing, ...stopAt('forcing', 1) });
    await distillStudent({ ...common, teacher: 'teacher', out: 'early', stage: 'forcing', steps: 1, resume: true });
    const got = {
      stopped,
      stoppedAll,
      resumed: { ...hashes('teacher-cut'), ...hashes('all-cut'), ...hashes('early') },
    };
    expect(got).toEqual(PINNED.resume);
  });

  it('--init: a teacher from a teacher file, a student from a student file', async () => {
    await trainTeacher({ ...common, init: 'teacher/model.safetensors', out: 'init-teacher', steps: 2, command: 'e' });
    await distillStudent({
      ...common,
      teacher: 'teacher',
      init: 'all/forcing.safetensors',
      out: 'init-student',
      stage: 'distill',
      steps: 2,
      command: 'f',
    });
    expect({ ...hashes('init-teacher'), ...hashes('init-student') }).toEqual(PINNED.init);
  });

  it('chained forcing -> distill into one folder, with a changed student and a from-scratch one', async () => {
    const student = { mamba: { bidirectional: false } };
    await distillStudent({ ...common, teacher: 'teacher', out: 'chain', stage: 'forcing', steps: 2, student, command: 'g' });
    const distill = { distill: { steps: 2, lambdaPseudo: 0.25 } };
    await distillStudent({ ...common, teacher: 'teacher', out: 'chain', stage: 'distill', student, overrides: distill, command: 'h' });
    await distillStudent({ ...common, teacher: 'teacher', out: 'scratch', stage: 'distill', steps: 1, teacherInit: false });
    expect({ ...hashes('chain'), ...hashes('scratch') }).toEqual(PINNED.chain);
  });

  it('edge paths: a resume with nothing left to do, --resume into a later stage, f16 model files', async () => {
    // a teacher resumed with fewer steps than it took: no step runs, the files are written again
    await trainTeacher({ ...common, out: 'teacher-done', steps: 2 });
    await trainTeacher({ ...common, out: 'teacher-done', steps: 1, resume: true, command: 'i' });
    // a finished distillation resumed: every stage is complete
    await distillStudent({ ...common, teacher: 'teacher', out: 'all-done', stage: 'distill', steps: 1 });
    await distillStudent({ ...common, teacher: 'teacher', out: 'all-done', stage: 'distill', resume: true, command: 'j' });
    // --resume naming the stage after the checkpoint's complete one starts that stage from its weights
    await distillStudent({ ...common, teacher: 'teacher', out: 'next', stage: 'forcing', steps: 1 });
    await distillStudent({ ...common, teacher: 'teacher', out: 'next', stage: 'distill', steps: 1, resume: true, modelDtype: 'f16' });
    expect({ ...hashes('teacher-done'), ...hashes('all-done'), ...hashes('next') }).toEqual(PINNED.edges);
  });
});
