/**
 * `t2md distill --lambda-guidance λ` (StageConfig.lambdaGuidance), run in-process through `main` (the
 * refusals come before any backend starts, so no build and no training): the flag in the help, its
 * stage overrides (not forcing under --stage all), and bad values as one sentence and exit 2.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { distillRunOptions } from '../src/commands/train.js';
import { EXIT_OK } from '../src/errors.js';
import { shippedModelPath } from '../src/models.js';
import { expectOneLine } from './cli.js';
import { plannedStages, t2mdInProcess as t2md } from './in-process.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-lambda-guidance-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const teacher = shippedModelPath('teacher')!;
const out = join(dir, 'run');

/** A refusal (exit 2, one sentence, no stack: `expectOneLine`) that wrote nothing on stdout and made nothing. */
function expectRefused(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  expectOneLine(r, pattern);
  expect(r.stdout).toBe('');
  expect(existsSync(out)).toBe(false);
}

describe('t2md distill --lambda-guidance', () => {
  it('is in the help of t2md distill, beside --lambda-pseudo', async () => {
    const r = await t2md(['distill', '--help']);
    expect(r.code).toBe(EXIT_OK);
    expect(r.stdout).toMatch(/--lambda-pseudo <x>/);
    expect(r.stdout).toMatch(/--lambda-guidance <x>\s+weight of L_guidance/);
  });

  it("goes to every stage run that compares the student's output with the teacher's (not forcing under --stage all)", () => {
    expect(distillRunOptions({ out: 'o', teacher: 't', stage: 'all', lambdaGuidance: 2 })).toEqual({
      overrides: { distill: { lambdaGuidance: 2 }, adapt: { lambdaGuidance: 2 }, finetune: { lambdaGuidance: 2 } },
    });
    expect(distillRunOptions({ out: 'o', teacher: 't', stage: 'all', lambdaGuidance: 2, lr: 1e-3 })).toEqual({
      overrides: {
        forcing: { lr: 1e-3 },
        distill: { lr: 1e-3, lambdaGuidance: 2 },
        adapt: { lr: 1e-3, lambdaGuidance: 2 },
        finetune: { lr: 1e-3, lambdaGuidance: 2 },
      },
    });
    // asked for by name, forcing gets it (and the plan refuses it: see below)
    expect(distillRunOptions({ out: 'o', teacher: 't', stage: 'forcing', lambdaGuidance: 2 })).toEqual({
      overrides: { forcing: { lambdaGuidance: 2 } },
    });
    // the plan of the shipped teacher's student takes it (headers only: no weights are read)
    expect(plannedStages(out, { lambdaGuidance: 0.5 }).map((s) => [s.name, s.cfg.lambdaGuidance])).toEqual([
      ['forcing', undefined],
      ['distill', 0.5],
      ['adapt', 0.5],
      ['finetune', 0.5],
    ]);
  });

  it.each([
    [['--lambda-guidance', '-1'], /--lambda-guidance must be a number in \[0, 1000000\], got '-1'\. See t2md --help\.$/],
    [['--lambda-guidance', 'x'], /--lambda-guidance must be a number in \[0, 1000000\], got 'x'\. See t2md --help\.$/],
    [['--lambda-guidance', 'Infinity'], /--lambda-guidance must be a number in \[0, 1000000\], got 'Infinity'/],
    [
      ['--stage', 'forcing', '--lambda-guidance', '1'],
      /^t2md: stage 'forcing' does not compare the student's output with the teacher's \(only stages distill, adapt, finetune do\), so its lambdaGuidance 1 would do nothing; leave it at 0\.$/,
    ],
    [
      ['--stage', 'distill', '--batch-size', '3', '--lambda-guidance', '1'],
      /^t2md: stage 'distill' lambdaGuidance pairs each image with its caption-dropped copy, so its batchSize must be even, got 3; pass an even batch size\.$/,
    ],
  ] as [string[], RegExp][])('refuses %j with exit 2 and one sentence', async (flags, pattern) => {
    expectRefused(await t2md(['distill', '--teacher', teacher, '--out', out, ...flags]), pattern);
  });

  it('is not a flag of t2md train (the teacher stage has no teacher to match)', async () => {
    expectRefused(await t2md(['train', '--out', out, '--lambda-guidance', '1']), /unknown option '--lambda-guidance'\. See t2md --help\.$/);
  });
});
