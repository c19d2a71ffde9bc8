/**
 * `t2md sample` without `--steps`: a shipped model samples at its measured step count (the step table of
 * @t2md/shapes, models/sampling.json) and says why; `--steps`, another sampler or a model file keep 20
 * (or what was asked).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
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

describe('t2md sample: --scale', () => {
  it('draws each pixel n × n, the same samples as at scale 1, and refuses a scale outside [1, 16]', () => {
    const args = ['sample', 'a red circle', '--model', 'teacher', '--steps', '2', '--count', '2'];
    const one = t2md([...args, '--out', join(dir, 's1.png')], env);
    const three = t2md([...args, '--scale', '3', '--out', join(dir, 's3.png')], env);
    expect(one.code, one.stderr).toBe(0);
    expect(three.code, three.stderr).toBe(0);
    expect(three.stdout).toContain('shown 3× larger');
    const a = PNG.sync.read(readFileSync(join(dir, 's1.png')));
    const b = PNG.sync.read(readFileSync(join(dir, 's3.png')));
    // two 32-px images side by side with a 2-px gap around them: 2 + 32s + 2 + 32s + 2 wide
    expect([a.width, a.height]).toEqual([70, 36]);
    expect([b.width, b.height]).toEqual([198, 100]);
    let differ = 0;
    for (let k = 0; k < 2; k++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const pa = ((2 + y) * a.width + 2 + k * 34 + x) * 4;
          for (let dy = 0; dy < 3; dy++) {
            for (let dx = 0; dx < 3; dx++) {
              const pb = ((2 + 3 * y + dy) * b.width + 2 + k * 98 + 3 * x + dx) * 4;
              for (let c = 0; c < 3; c++) if (a.data[pa + c] !== b.data[pb + c]) differ++;
            }
          }
        }
      }
    }
    expect(differ).toBe(0);

    const bad = t2md([...args, '--scale', '0', '--out', join(dir, 's0.png')], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--scale/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  }, 120_000);
});
