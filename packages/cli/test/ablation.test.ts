/**
 * The ablation flags of `t2md train` / `t2md distill` (built CLI, wasm) and bench/ablation.sh end to end
 * on a few rungs with two steps each (the whole ladder takes about 100 s on 2 shared CPU cores; see
 * bench/ablation.md).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandLine, distillRunOptions } from '../src/commands/train.js';
import { BIN, expectOneLine, t2md } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-ablation-'));
const env = { T2MD_BACKEND: 'wasm' };
const teacher = join(dir, 'teacher');
const SCRIPT = resolve(__dirname, '..', '..', '..', 'bench', 'ablation.sh');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The JSON metadata entry `key` of a safetensors file. */
function metadata(file: string, key: string): Record<string, unknown> {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  return JSON.parse(JSON.parse(b.subarray(8, 8 + n).toString()).__metadata__[key]);
}

describe('ablation flags and bench/ablation.sh (wasm)', () => {
  beforeAll(() => {
    const recipe = ['--warmup', '3', '--lr-decay', 'cosine', '--ema-decay', '0.5', '--caption-dropout', '0.2', '--min-snr', '5'];
    const r = t2md(['train', '--out', teacher, '--preset', 'tiny', '--steps', '2', '--batch-size', '2', '--lr', '0.001', ...recipe], env);
    expect(r.code, r.stderr).toBe(0);
    // the command line, as a shell takes it back, is in the model file
    const args = ['train', '--out', teacher, '--preset', 'tiny', '--steps', '2', '--batch-size', '2', '--lr', '0.001', ...recipe];
    expect(metadata(join(teacher, 'model.safetensors'), 't2md.train').commands).toEqual([`t2md ${args.join(' ')}`]);
    expect(metadata(join(teacher, 'model.safetensors'), 't2md.preset')).toMatchObject({
      stages: {
        teacher: { batchSize: 2, lr: 0.001, warmupSteps: 3, lrDecay: 'cosine', emaDecay: 0.5, captionDropout: 0.2, minSnrGamma: 5 },
      },
    });
  });

  it('rejects bad flag values with exit 2 and one line', () => {
    const d = ['distill', '--teacher', teacher, '--out', join(dir, 'bad')];
    expectOneLine(t2md([...d, '--lr', '0'], env), /--lr must be a number > 0, got '0'/);
    expectOneLine(t2md([...d, '--batch-size', '0'], env), /--batch-size must be an integer in \[1, /);
    expectOneLine(t2md([...d, '--lambda-pseudo', '-1'], env), /--lambda-pseudo must be a number in \[0, /);
    expectOneLine(t2md([...d, '--lambda-mixer', 'x'], env), /--lambda-mixer must be a number/);
    expectOneLine(t2md([...d, '--scan', 'both'], env), /--scan must be one of bi, uni/);
    expectOneLine(t2md([...d, '--trainable', 'some'], env), /--trainable must be one of all, mixers, mamba/);
    expectOneLine(t2md([...d, '--layout', 'SA-XY'], env), /layout 'SA-XY' is malformed at position 4/);
    expectOneLine(t2md(['train', '--out', join(dir, 'bad'), '--lr', 'fast'], env), /--lr must be a number > 0/);
    expectOneLine(t2md(['train', '--out', join(dir, 'bad'), '--batch-size', '2.5'], env), /--batch-size must be an integer/);
    expectOneLine(t2md(['train', '--out', join(dir, 'bad'), '--ema-decay', '1'], env), /--ema-decay must be a number in \[0, /);
    expectOneLine(t2md(['train', '--out', join(dir, 'bad'), '--lr-decay', 'step'], env), /--lr-decay must be one of constant, cosine/);
    expectOneLine(t2md(['train', '--out', join(dir, 'bad'), '--min-snr', '-1'], env), /--min-snr must be a number in \[0, /);
    expectOneLine(t2md(['distill', '--teacher', dir, '--out', join(dir, 'bad')], env), /is a folder without model\.safetensors/);
  });

  it('records the command line quoted as a shell reads it back', () => {
    expect(commandLine(['train', '--out', 'runs/a b', '--lr', '1e-3'])).toBe("t2md train --out 'runs/a b' --lr 1e-3");
    expect(commandLine(['sample', "it's"])).toBe("t2md sample 'it'\\''s'");
  });

  it('maps the flags to per-stage overrides, student changes and teacherInit', () => {
    expect(distillRunOptions({ out: 'o', teacher: 't', stage: 'distill', lambdaPseudo: 0.3, lambdaMixer: 0, teacherInit: true })).toEqual({
      overrides: { distill: { lambdaPseudo: 0.3, lambdaMixer: 0 } },
    });
    expect(
      distillRunOptions({
        out: 'o',
        teacher: 't',
        lr: 1e-3,
        batchSize: 8,
        trainable: 'all',
        teacherInit: false,
        scan: 'uni',
        layout: 'HM-WM',
      }),
    ).toEqual({
      overrides: Object.fromEntries(
        ['forcing', 'distill', 'adapt', 'finetune'].map((s) => [s, { lr: 1e-3, batchSize: 8, trainable: 'all' }]),
      ),
      student: { layout: 'HM-WM', mamba: { bidirectional: false } },
      teacherInit: false,
    });
    expect(distillRunOptions({ out: 'o', teacher: 't', teacherInit: true })).toEqual({});
  });

  it('bench/ablation.sh runs rungs end to end and writes ablation.json with commands, steps, scores and times', () => {
    const out = join(dir, 'ladder');
    const r = spawnSync('bash', [SCRIPT, `${process.execPath} ${BIN}`, teacher, out, '2'], {
      encoding: 'utf8',
      env: { ...process.env, ...env, RUNGS: 'scratch uni', PARALLEL: '2', PROMPTS: '6', EVAL_STEPS: '1' },
      timeout: 240_000,
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const doc = JSON.parse(readFileSync(join(out, 'ablation.json'), 'utf8'));
    expect(doc).toMatchObject({ steps: 2, forcingSteps: 1, prompts: 6, evalSteps: 1 });
    expect(doc.rungs.map((x: { rung: string }) => x.rung)).toEqual(['scratch', 'uni']);
    for (const rung of doc.rungs) {
      expect(rung).toMatchObject({ steps: 2, trainExitCode: 0, evalExitCode: 0 });
      expect(rung.overall).toBeGreaterThanOrEqual(0);
      expect(rung.overall).toBeLessThanOrEqual(1);
      expect(Object.keys(rung.categories).sort()).toEqual(
        ['colorAttribution', 'colors', 'counting', 'position', 'singleObject', 'twoObjects'].sort(),
      );
      expect(rung.wallSeconds).toBeGreaterThan(0);
    }
    const [scratch, uni] = doc.rungs;
    expect(scratch.command).toMatch(
      /distill .*--stage distill --steps 2 --no-teacher-init --trainable all --lambda-pseudo 0 --lambda-mixer 0/,
    );
    expect(uni.commands).toHaveLength(2);
    expect(uni.commands[0]).toMatch(/--stage forcing --steps 1 --scan uni/);
    expect(uni.commands[1]).toMatch(/--stage distill --steps 1 --scan uni/);
    // What the flags did is in the files' metadata.
    expect(metadata(join(out, 'scratch', 'model.safetensors'), 't2md.train')).toMatchObject({ teacherInit: false });
    expect(metadata(join(out, 'scratch', 'model.safetensors'), 't2md.preset')).toMatchObject({
      stages: { distill: { lambdaPseudo: 0, lambdaMixer: 0, trainable: 'all' } },
    });
    expect(metadata(join(out, 'uni', 'model.safetensors'), 't2md.config')).toMatchObject({ mamba: { bidirectional: false } });
    // Bad arguments: usage on stderr, exit 2.
    const bad = spawnSync('bash', [SCRIPT, `${process.execPath} ${BIN}`, teacher, out, '1'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/STEPS must be an integer >= 2/);
  });
});
