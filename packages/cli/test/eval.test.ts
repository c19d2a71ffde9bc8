/** `t2md eval --json`: one JSON document on stdout, progress lines on stderr (not a terminal here). */
import { describe, expect, it } from 'vitest';
import { t2md } from './cli.js';

describe('t2md eval', () => {
  it('keeps stdout one JSON document and reports progress on stderr', () => {
    const r = t2md(['eval', '--model', 'teacher', '--prompts', '6', '--steps', '2', '--batch', '3', '--json'], { T2MD_BACKEND: 'wasm' });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ model: 'teacher', prompts: 6 });
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
