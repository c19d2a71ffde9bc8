/**
 * The tiny preset end to end through the built CLI: train → distill → sample, a kill -9 mid-run and a
 * --resume that continues from the checkpoint's step, and bad input exiting 2 with one line.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, expectOneLine, t2md } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-cli-'));
const env = { T2MD_BACKEND: 'wasm' };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const metrics = (d: string) =>
  readFileSync(join(d, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; stage?: string; loss: number });

describe('t2md train → distill → sample (tiny preset)', () => {
  const teacher = join(dir, 'teacher');
  const student = join(dir, 'student');

  it('trains a teacher and writes its checkpoint, model and metrics', () => {
    const r = t2md(['train', '--out', teacher, '--preset', 'tiny', '--steps', '12'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(teacher, 'latest.safetensors'))).toBe(true);
    expect(existsSync(join(teacher, 'model.safetensors'))).toBe(true);
    const m = metrics(teacher);
    expect(m.map((l) => l.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(m.every((l) => Number.isFinite(l.loss))).toBe(true);
  });

  it('distills a student through every stage', () => {
    const r = t2md(['distill', '--teacher', join(teacher, 'model.safetensors'), '--out', student, '--preset', 'tiny', '--steps', '3'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(student, 'model.safetensors'))).toBe(true);
    const stages = new Set(metrics(student).map((l) => l.stage));
    expect([...stages]).toEqual(['forcing', 'distill', 'adapt', 'finetune']);
  });

  it('samples a PNG grid from the student and the teacher, printing the time per step', () => {
    for (const model of [join(student, 'model.safetensors'), join(teacher, 'model.safetensors')]) {
      const out = join(dir, `${model.includes('student') ? 'student' : 'teacher'}.png`);
      const r = t2md(['sample', 'two red circles', '--model', model, '--steps', '3', '--count', '2', '--out', out, '--seed', '1'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/ms\/step on wasm/);
      // Progress goes to stderr as plain lines (not a terminal here), one per step at this size.
      expect(r.stderr).toMatch(/^sample 1\/3 steps \| .*\nsample 2\/3 steps .*\nsample 3\/3 steps \| \d+\.\d\d s\/step\n$/);
      const png = readFileSync(out);
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(statSync(out).size).toBeGreaterThan(100);
    }
  });

  it('survives kill -9 mid-run and resumes from the checkpoint step', async () => {
    const out = join(dir, 'killed');
    const child = spawn(process.execPath, [BIN, 'train', '--out', out, '--preset', 'tiny', '--steps', '30'], {
      env: { ...process.env, ...env },
      stdio: 'ignore',
    });
    // Wait until the first checkpoint (every 10 steps) exists and a few more steps are logged.
    const deadline = Date.now() + 240_000;
    while (Date.now() < deadline) {
      if (existsSync(join(out, 'latest.safetensors')) && existsSync(join(out, 'metrics.jsonl')) && metrics(out).length >= 13) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const before = metrics(out).length;
    expect(before).toBeGreaterThanOrEqual(13);
    expect(before).toBeLessThan(30);
    const r = t2md(['train', '--out', out, '--resume'], env);
    expect(r.code, r.stderr).toBe(0);
    // The resumed run replaced the lines after the checkpoint: every step exactly once, in order.
    expect(metrics(out).map((l) => l.step)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('exits 2 with one line on bad input', () => {
    const model = join(teacher, 'model.safetensors');
    const corrupt = join(dir, 'corrupt.safetensors');
    writeFileSync(corrupt, Buffer.from('not a safetensors file at all'));
    expectOneLine(t2md(['train', '--out', join(dir, 'x'), '--steps', '-3'], env), /--steps must be an integer/);
    expectOneLine(
      t2md(['sample', 'a red circle', '--model', model, '--size', '15'], env),
      /size 15 is not a multiple of the model's patch size/,
    );
    expectOneLine(t2md(['sample', 'a red circle', '--model', join(dir, 'missing.safetensors')], env), /missing\.safetensors/);
    expectOneLine(
      t2md(['sample', 'a red circle', '--model', corrupt], env),
      /corrupt\.safetensors is not a model or checkpoint file \(.*\); pass a \.safetensors file written/,
    );
    expectOneLine(t2md(['sample', 'a red circle', '--model', model, '--out', join(dir, 'x.jpg')], env), /--out must name a \.png file/);
    // Library messages name library options; the CLI adds its flags.
    expectOneLine(
      t2md(['train', '--out', teacher], env),
      /already holds a checkpoint .*; resume it, or choose another out folder \(pass --resume to continue it, or another --out\)\.$/,
    );
    expectOneLine(
      t2md(['train', '--out', join(dir, 'empty'), '--resume'], env),
      /nothing to resume; start without resume \(drop --resume\)\.$/,
    );
    expectOneLine(t2md(['sample', 'a red dragon', '--model', model], env), /dragon/);
    expectOneLine(t2md(['train', '--out', join(dir, 'x'), '--bogus'], env), /unknown option '--bogus'/);
    expectOneLine(t2md(['distill', '--teacher', corrupt, '--out', join(dir, 'y')], env), /corrupt\.safetensors/);
  });
});
