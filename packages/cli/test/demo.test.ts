/**
 * `t2md demo` (what `npm run demo` runs) with the models this install ships: a grid per model and
 * prompt, and the README's figure, one image per prompt with the teacher's row above the student's.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { placeholderNotice } from '@t2md/shapes';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { shippedModelPath, shippedSteps } from '../src/models.js';
import { t2md } from './cli.js';

/** A safetensors file's metadata: the `__metadata__` of its JSON header (after an 8-byte little-endian length). */
function metadataOf(path: string): Record<string, string> {
  const bytes = readFileSync(path);
  return JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8')).__metadata__ ?? {};
}

const dir = mkdtempSync(join(tmpdir(), 't2md-demo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('t2md demo (shipped models, wasm)', () => {
  it('writes a grid per model and prompt and teacher-vs-student.png: 4 prompts wide, 2 models high', async () => {
    const r = t2md(['demo', '--out', dir], { T2MD_BACKEND: 'wasm' });
    expect(r.code, r.stderr).toBe(0);
    const files = readdirSync(dir).sort();
    expect(files).toEqual(
      [...[0, 1, 2, 3].map((i) => `student-${i}.png`), ...[0, 1, 2, 3].map((i) => `teacher-${i}.png`), 'teacher-vs-student.png'].sort(),
    );
    const png = PNG.sync.read(readFileSync(join(dir, 'teacher-vs-student.png')));
    // 4 columns and 2 rows of side s with a 2-pixel gap around each: W = 4s + 10, H = 2s + 6
    const side = (png.width - 10) / 4;
    expect(Number.isInteger(side) && side > 0).toBe(true);
    expect(png.height).toBe(2 * side + 6);
    expect(r.stdout).toContain('teacher (top) and student (bottom)');
    // each model at its measured step count (the step table), said before sampling and in every grid's line
    for (const name of ['teacher', 'student'] as const) {
      const chosen = (await shippedSteps(name))!;
      expect(r.stdout).toContain(`${name}: ${chosen.note}`);
      expect(r.stdout).toMatch(new RegExp(`^wrote .+${name}-0\\.png \\(4 images\\), ${chosen.steps} steps at `, 'm'));
    }
    expect(r.stdout).toMatch(/^done: PNG grids are in .+ \(backend wasm\)$/m);
    // the shipped models' metadata decides whether they are announced as placeholders
    const notice = placeholderNotice(...(['teacher', 'student'] as const).map((n) => metadataOf(shippedModelPath(n)!)));
    expect(r.stdout.includes(`note: ${notice}`)).toBe(notice != null);
  }, 300_000); // a child process; 65 s in CI under the suite's load
});
