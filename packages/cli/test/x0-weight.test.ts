/**
 * `t2md train|distill --x0-weight Γ` (StageConfig.x0WeightCap), run in-process through `main`: the flag
 * in both helps, its stage overrides (not forcing under --stage all), bad values and v models as one
 * sentence and exit 2 before any backend starts, and one tiny teacher step (cpu) that stores it.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRESET_KEY } from '@t2md/distill';
import { afterAll, describe, expect, it } from 'vitest';
import { distillRunOptions } from '../src/commands/train.js';
import { EXIT_OK } from '../src/errors.js';
import { shippedModelPath } from '../src/models.js';
import { expectOneLine } from './cli.js';
import { plannedStages, t2mdInProcess as t2md } from './in-process.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-x0-weight-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const teacher = shippedModelPath('teacher')!;
const out = join(dir, 'run');

/** A safetensors file's metadata, from its header. */
function metadata(path: string): Record<string, string> {
  const b = readFileSync(path);
  return JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString()).__metadata__;
}

/** A refusal (exit 2, one sentence, no stack: `expectOneLine`) that wrote nothing on stdout and made nothing. */
function expectRefused(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  expectOneLine(r, pattern);
  expect(r.stdout).toBe('');
  expect(existsSync(out)).toBe(false);
}

describe('t2md train|distill --x0-weight', () => {
  it.each([['train'], ['distill']])('is in the help of t2md %s, beside --min-snr', async (command) => {
    const r = await t2md([command, '--help']);
    expect(r.code).toBe(EXIT_OK);
    expect(r.stdout).toMatch(/--min-snr <gamma>/);
    expect(r.stdout).toMatch(/--x0-weight <cap>\s+weight the denoising loss toward high noise/);
  });

  it('goes to every distillation stage run that has an L_mse (not forcing under --stage all)', () => {
    expect(distillRunOptions({ out: 'o', teacher: 't', stage: 'all', x0Weight: 20 })).toEqual({
      overrides: { distill: { x0WeightCap: 20 }, adapt: { x0WeightCap: 20 }, finetune: { x0WeightCap: 20 } },
    });
    expect(distillRunOptions({ out: 'o', teacher: 't', stage: 'all', x0Weight: 20, lambdaGuidance: 1, lr: 1e-3 })).toEqual({
      overrides: {
        forcing: { lr: 1e-3 },
        distill: { lr: 1e-3, x0WeightCap: 20, lambdaGuidance: 1 },
        adapt: { lr: 1e-3, x0WeightCap: 20, lambdaGuidance: 1 },
        finetune: { lr: 1e-3, x0WeightCap: 20, lambdaGuidance: 1 },
      },
    });
    // asked for by name, forcing gets it (and the plan refuses it: see below)
    expect(distillRunOptions({ out: 'o', teacher: 't', stage: 'forcing', x0Weight: 20 })).toEqual({
      overrides: { forcing: { x0WeightCap: 20 } },
    });
    // the plan of the shipped (ε) teacher's student takes it (headers only: no weights are read)
    expect(plannedStages(out, { x0Weight: 20 }).map((s) => [s.name, s.cfg.x0WeightCap])).toEqual([
      ['forcing', undefined],
      ['distill', 20],
      ['adapt', 20],
      ['finetune', 20],
    ]);
  });

  it.each([
    [['train', '--out', out, '--x0-weight', '0.5'], /--x0-weight must be a number in \[1, 1000000\], got '0\.5'\. See t2md --help\.$/],
    [['train', '--out', out, '--x0-weight', 'NaN'], /--x0-weight must be a number in \[1, 1000000\], got 'NaN'\. See t2md --help\.$/],
    [
      ['distill', '--teacher', teacher, '--out', out, '--x0-weight', 'Infinity'],
      /--x0-weight must be a number in \[1, 1000000\], got 'Infinity'/,
    ],
    [
      ['train', '--out', out, '--prediction', 'v', '--x0-weight', '10'],
      /^t2md: stage 'teacher' sets x0WeightCap, which weights an ε model's L_mse, but its prediction is v \(its L_mse already weights high noise\); leave it at 1\.$/,
    ],
    [
      ['distill', '--teacher', teacher, '--out', out, '--stage', 'forcing', '--x0-weight', '10'],
      /^t2md: stage 'forcing' has no L_mse \(teacher forcing matches each mixer's output\), so its x0WeightCap 10 would do nothing; leave it at 1\.$/,
    ],
  ] as [string[], RegExp][])('refuses %j with exit 2 and one sentence', async (args, pattern) => {
    expectRefused(await t2md(args), pattern);
  });

  it('a tiny teacher step with it trains and stores Γ with the run (cpu)', async () => {
    const run = join(dir, 'tiny');
    const r = await t2md(['train', '--out', run, '--preset', 'tiny', '--steps', '1', '--x0-weight', '30', '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(EXIT_OK);
    expect(r.stdout).toMatch(/^train done: teacher step 1, loss \d/);
    for (const f of ['model.safetensors', 'latest.safetensors']) {
      expect(JSON.parse(metadata(join(run, f))[PRESET_KEY]!).stages.teacher.x0WeightCap, f).toBe(30);
    }
  }, 120_000);
});
