/**
 * `t2md sample` without `--steps`: a shipped model samples at its measured step count (the step table of
 * @t2md/shapes, models/sampling.json) and says why; `--steps`, another sampler or a model file keep 20
 * (or what was asked).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shippedModelPath, shippedSteps } from '../src/models.js';
import { t2md } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-sample-steps-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { T2MD_BACKEND: 'wasm' };

describe('t2md sample: step count', () => {
  it("a shipped model without --steps takes the table's count; --steps and model files keep theirs", async () => {
    const chosen = (await shippedSteps('teacher'))!;
    expect(chosen.measured, chosen.note).toBe(true);
    const r = t2md(['sample', 'a red circle', '--model', 'teacher', '--out', join(dir, 'a.png')], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${chosen.steps} dpmpp-2m steps at [\\d.]+ ms/step on wasm`, 'm'));
    expect(r.stdout).toContain(chosen.note);

    const asked = t2md(['sample', 'a red circle', '--model', 'teacher', '--steps', '3', '--out', join(dir, 'b.png')], env);
    expect(asked.code, asked.stderr).toBe(0);
    expect(asked.stdout).toMatch(/^3 dpmpp-2m steps at /m);
    expect(asked.stdout).not.toContain('the fewest whose eval score');

    // the same bytes named by path are not "the shipped model": eval's and sample's documented 20
    const path = t2md(['sample', 'a red circle', '--model', shippedModelPath('teacher')!, '--out', join(dir, 'c.png')], env);
    expect(path.code, path.stderr).toBe(0);
    expect(path.stdout).toMatch(/^20 dpmpp-2m steps at /m);
  }, 120_000);
});
