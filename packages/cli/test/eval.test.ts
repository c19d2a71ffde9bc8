/**
 * `t2md eval --json`: one JSON document on stdout, progress lines on stderr (not a terminal here).
 * `t2md train --eval-every`: the same score of the EMA weights, in metrics.jsonl as training goes.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { t2md } from './cli.js';

describe('t2md eval', () => {
  it('keeps stdout one JSON document and reports progress on stderr', () => {
    const r = t2md(['eval', '--model', 'teacher', '--prompts', '6', '--steps', '2', '--batch', '3', '--json'], { T2MD_BACKEND: 'wasm' });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ model: 'teacher', prompts: 6 });
    // the settings that made the score travel with it
    expect(report.settings).toEqual({
      steps: 2,
      sampler: 'dpmpp-2m',
      cfg: 4.5,
      seed: 0,
      batch: 3,
      size: 32,
      posEmbed: 'interpolated',
      backend: 'wasm',
    });
    expect(report.overall).toBeGreaterThanOrEqual(0);
    // 2 batches × 2 steps, one plain line per update at this size, the last without an ETA.
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^eval 1\/4 steps \| batch 1\/2 \| \d+\.\d\d s\/step \| eta /),
      expect.stringMatching(/^eval 2\/4 steps \| batch 1\/2 \| /),
      expect.stringMatching(/^eval 3\/4 steps \| batch 2\/2 \| /),
      expect.stringMatching(/^eval 4\/4 steps \| batch 2\/2 \| \d+\.\d\d s\/step$/),
    ]);
  });
});

describe('t2md train --eval-every', () => {
  it('writes the eval score of the EMA weights every N steps and at the end; the last equals t2md eval of the model file', () => {
    const out = mkdtempSync(join(tmpdir(), 't2md-quick-eval-'));
    try {
      const env = { T2MD_BACKEND: 'cpu' };
      const flags = ['--eval-prompts', '6', '--eval-steps', '2'];
      const r = t2md(['train', '--out', out, '--preset', 'tiny', '--steps', '5', '--eval-every', '2', ...flags], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/^teacher 5\/5 steps \| loss \S+ \| samples\/s [\d.]+ \| geneval \d\.\d{3} @5 \|/m); // the bar shows the latest score
      const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, number | string>);
      const evals = lines.filter((l) => l.eval === 'geneval');
      expect(evals.map((l) => l.step)).toEqual([2, 4, 5]);
      for (const l of evals) expect(Object.keys(l)).toEqual(expect.arrayContaining(['overall', 'counting', 'colorAttribution']));
      const e = t2md(['eval', '--model', join(out, 'model.safetensors'), '--prompts', '6', '--steps', '2', '--json'], env);
      expect(e.code, e.stderr).toBe(0);
      const report = JSON.parse(e.stdout) as { overall: number; categories: Record<string, number> };
      expect(evals[2]).toMatchObject({ overall: report.overall, ...report.categories });
      // --eval-every is the command's: a resume without it says that it will not score
      const note = /note: this run scored itself with --eval-every before; pass --eval-every .* again to keep scoring it\.$/m;
      const bare = t2md(['train', '--out', out, '--resume', '--steps', '6'], env);
      expect(bare.code, bare.stderr).toBe(0);
      expect(bare.stderr).toMatch(note);
      const kept = t2md(['train', '--out', out, '--resume', '--steps', '7', '--eval-every', '10', ...flags], env);
      expect(kept.code, kept.stderr).toBe(0);
      expect(kept.stderr).not.toMatch(note);
      // a resume whose checkpoint already holds every step says so, instead of a loss it never computed
      const idle = t2md(['train', '--out', out, '--resume', '--steps', '7'], env);
      expect(idle.code, idle.stderr).toBe(0);
      expect(idle.stdout).toMatch(/^train done: teacher step 7, nothing left to train in the checkpoint$/m);
      const bad = t2md(['train', '--out', join(out, 'bad'), '--preset', 'tiny', '--eval-every', '0'], env);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(bad.stderr).toContain('--eval-every must be an integer');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
