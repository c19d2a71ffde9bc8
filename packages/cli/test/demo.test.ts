/**
 * `t2md demo` (what `npm run demo` runs) with the models this install ships: a grid per model and
 * prompt, and the README's figure, one image per prompt with the teacher's row above the student's.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { t2md } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-demo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('t2md demo (shipped models, wasm)', () => {
  it('writes a grid per model and prompt and teacher-vs-student.png: 4 prompts wide, 2 models high', () => {
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
  });
});
