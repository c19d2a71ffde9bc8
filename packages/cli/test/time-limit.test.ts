/**
 * Time-bounded training through the built CLI on cpu: `--time-limit` stops cleanly with both files
 * written and exit 0, `--resume --time-limit` continues from the step reached with no metrics step
 * twice, and `timeout -s INT` (which signals the process group, so the process can see SIGINT twice at
 * once) still leaves a checkpoint and a model.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, t2md } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-time-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { T2MD_BACKEND: 'cpu' };

const steps = (d: string) =>
  readFileSync(join(d, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { step: number }).step);

/** The step `t2md.train` records in a safetensors file's metadata. */
function savedStep(file: string): number {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  const meta = JSON.parse(b.subarray(8, 8 + n).toString()).__metadata__ as Record<string, string>;
  return (JSON.parse(meta['t2md.train']!) as { step: number }).step;
}

describe('t2md train --time-limit (tiny preset, cpu)', () => {
  const out = join(dir, 'limited');
  it('stops at the limit with exit 0, a checkpoint and a model, and resumes from the step reached', () => {
    const limitS = 12; // 0.2 min
    const t0 = performance.now();
    const r = t2md(['train', '--out', out, '--preset', 'tiny', '--steps', '100000', '--time-limit', '0.2'], env);
    const took = (performance.now() - t0) / 1000;
    expect(r.code, r.stderr).toBe(0);
    expect(took).toBeLessThan(limitS + 30);
    expect(r.stderr).toMatch(
      /reached the time limit .* at teacher step (\d+); checkpoint .*latest\.safetensors, model .*model\.safetensors; continue with --resume/,
    );
    for (const f of ['latest.safetensors', 'model.safetensors']) expect(existsSync(join(out, f)), f).toBe(true);
    const reached = savedStep(join(out, 'latest.safetensors'));
    expect(reached).toBeGreaterThan(0);
    expect(savedStep(join(out, 'model.safetensors'))).toBe(reached);

    const again = t2md(['train', '--out', out, '--resume', '--time-limit', '0.2'], env);
    expect(again.code, again.stderr).toBe(0);
    const later = savedStep(join(out, 'latest.safetensors'));
    expect(later).toBeGreaterThan(reached);
    const logged = steps(out);
    expect(new Set(logged).size, 'a step logged twice').toBe(logged.length);
    expect(logged).toEqual(Array.from({ length: later }, (_, i) => i + 1));
  }, 180_000);

  it('saves on SIGINT even when the signal arrives twice at once (timeout -s INT signals the group)', async () => {
    const sig = join(dir, 'signalled');
    // its own process group, as under `timeout`, so one kill(-pid) reaches it like a group signal
    const child = spawn(process.execPath, [BIN, 'train', '--out', sig, '--preset', 'tiny', '--steps', '100000'], {
      env: { ...process.env, ...env },
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // wait until training runs (the first metrics line), then the double signal
    const deadline = Date.now() + 120_000;
    while (!existsSync(join(sig, 'metrics.jsonl')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    process.kill(-child.pid!, 'SIGINT');
    process.kill(-child.pid!, 'SIGINT');
    const code = await exited;
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/interrupted at teacher step \d+; checkpoint/);
    expect(existsSync(join(sig, 'latest.safetensors'))).toBe(true);
    expect(existsSync(join(sig, 'model.safetensors'))).toBe(true);
    const reached = savedStep(join(sig, 'latest.safetensors'));
    expect(steps(sig).at(-1)).toBe(reached);
  }, 180_000);
});
