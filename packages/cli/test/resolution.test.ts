/**
 * `t2md train|distill --resolution` (StageConfig.resolution) and `t2md distill --pos-embed`
 * (StageConfig.posEmbed), run in-process through `main`: the flags in the helps, the parser, the stage
 * overrides they make, bad values as one sentence and exit 2 before any backend starts, and tiny
 * mixed-resolution steps (cpu) whose files record the setting.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRESET_KEY } from '@t2md/distill';
import { CONFIG_METADATA_KEY } from '@t2md/dit';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_OK } from '../src/errors.js';
import { shippedModelPath } from '../src/models.js';
import { resolutionArg } from '../src/options.js';
import { expectOneLine } from './cli.js';
import { plannedStages, t2mdInProcess as t2md } from './in-process.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-resolution-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const teacher = shippedModelPath('teacher')!;
const out = join(dir, 'run');

/** A safetensors file's metadata entry `key`, parsed. */
function stored(path: string, key: string) {
  const b = readFileSync(path);
  const meta = JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString()).__metadata__;
  return JSON.parse(meta[key]);
}

describe('t2md train|distill --resolution, t2md distill --pos-embed', () => {
  it('are in the helps (--pos-embed only where there is a student)', async () => {
    const train = await t2md(['train', '--help']);
    const distill = await t2md(['distill', '--help']);
    expect(train.code).toBe(EXIT_OK);
    expect(train.stdout).toMatch(/--resolution <px>\s+image side\(s\) the stage trains at/);
    expect(train.stdout).not.toMatch(/--pos-embed/);
    expect(distill.stdout).toMatch(/--resolution <px>/);
    expect(distill.stdout).toMatch(/--pos-embed <kind>\s+the student's positional embedding/);
  });

  it('parses one side as a number and several as weighted choices', () => {
    const parse = resolutionArg();
    expect(parse('64')).toBe(64);
    expect(parse(' 32 , 64 ')).toEqual([
      { size: 32, weight: 1 },
      { size: 64, weight: 1 },
    ]);
    expect(parse('32:1,64:4')).toEqual([
      { size: 32, weight: 1 },
      { size: 64, weight: 4 },
    ]);
    expect(parse('48:0.5')).toBe(48); // one side: its weight is moot
  });

  it('override every stage run (headers only: no weights are read)', () => {
    const both = [
      { size: 32, weight: 1 },
      { size: 64, weight: 3 },
    ];
    const stages = plannedStages(out, { resolution: both, posEmbed: 'sincos' });
    expect(stages.map((s) => [s.name, s.cfg.resolution, s.cfg.posEmbed])).toEqual([
      ['forcing', both, 'sincos'],
      ['distill', both, 'sincos'],
      ['adapt', both, 'sincos'],
      ['finetune', both, 'sincos'],
    ]);
    expect(plannedStages(out, { posEmbed: 'interpolated' }).map((s) => s.cfg.posEmbed)).toEqual(Array(4).fill('interpolated'));
    // without the flags the preset's stay: adapt and finetune swap to centred positions
    expect(plannedStages(out, {}).map((s) => s.cfg.posEmbed)).toEqual(['sincos', 'sincos', 'centered', 'centered']);
  });

  it.each([
    [['train', '--out', out, '--resolution', '4'], /--resolution sides must be integers in \[8, 1024\] pixels, got 4\. See t2md --help\.$/],
    [['train', '--out', out, '--resolution', '32,32'], /--resolution names 32 px twice; give each side once\./],
    [['train', '--out', out, '--resolution', '32:0'], /--resolution weight of 32 px must be > 0, got 0\./],
    [['train', '--out', out, '--resolution', '32px'], /--resolution takes image sides in pixels separated by commas/],
    [
      ['distill', '--teacher', teacher, '--out', out, '--resolution', '32,33'],
      /^t2md: stage 'forcing' trains at 33 px, which does not split into 2-px patches; use a multiple of 2\.$/,
    ],
    [
      ['distill', '--teacher', teacher, '--out', out, '--pos-embed', 'rope'],
      /--pos-embed must be one of sincos, centered, interpolated, got 'rope'\./,
    ],
  ] as [string[], RegExp][])('refuses %j with exit 2 and one sentence', async (args, pattern) => {
    const r = await t2md(args);
    expectOneLine(r, pattern);
    expect(r.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it('a tiny mixed-resolution teacher, then a student stage at its sin-cos positions, train and record it (cpu)', async () => {
    const t = join(dir, 'teacher');
    const res = ['--resolution', '16,24'];
    const r = await t2md(['train', '--out', t, '--preset', 'tiny', '--steps', '2', '--batch-size', '2', ...res, '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(EXIT_OK);
    expect(stored(join(t, 'model.safetensors'), PRESET_KEY).stages.teacher.resolution).toEqual([
      { size: 16, weight: 1 },
      { size: 24, weight: 1 },
    ]);
    /** A 1- or 2-step adapt stage of a student of `t` in DIR/`name` (extra flags after); its model's posEmbed. */
    const adapt = async (name: string, steps: string, ...flags: string[]) => {
      const out = join(dir, name);
      const args = ['distill', '--teacher', t, '--out', out, '--stage', 'adapt', '--steps', steps, '--batch-size', '2'];
      const d = await t2md([...args, ...flags, '--backend', 'cpu']);
      expect(d.code, d.stderr).toBe(EXIT_OK);
      return join(out, 'model.safetensors');
    };
    const model = await adapt('student', '2', ...res, '--pos-embed', 'sincos');
    expect(stored(model, PRESET_KEY).stages.adapt.posEmbed).toBe('sincos');
    expect(stored(model, CONFIG_METADATA_KEY).posEmbed).toBe('sincos'); // no swap to centred positions
    // and without the flag the adapt stage swaps them (the preset's default)
    expect(stored(await adapt('centred', '1'), CONFIG_METADATA_KEY).posEmbed).toBe('centered');
    // --pos-embed interpolated swaps the student to base-size-scaled positions at both sides
    const interpolated = await adapt('interpolated', '1', ...res, '--pos-embed', 'interpolated');
    expect(stored(interpolated, CONFIG_METADATA_KEY).posEmbed).toBe('interpolated');
  }, 180_000);
});
