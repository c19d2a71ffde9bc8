/**
 * Issue 24's bound on the trainer's shape (style.md point 13): following `trainTeacher`'s options
 * (scripts/trace-stays.mjs, whose header states the rule) makes at most 8 file stays, at most 2 of them
 * returns to a file already left, and no trainer file is over 350 lines. No tensors: it reads the source.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { formatTrace, traceStays } from '../../../../scripts/trace-stays.mjs';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const trainer = fileURLToPath(new URL('.', import.meta.url));

describe('the trainer reads as a straight line', () => {
  it("following trainTeacher's options makes ≤ 8 stays with ≤ 2 returns", () => {
    const r = traceStays({ file: 'packages/distill/src/trainer/pipeline.ts', fn: 'trainTeacher', param: 'opts', root });
    const why = `\n${formatTrace(r)}`;
    expect(r.trace[0], why).toMatchObject({ fn: 'trainTeacher' });
    expect(
      r.trace.map((t) => t.fn),
      why,
    ).toEqual(expect.arrayContaining(['planTeacher', 'runPlan']));
    expect(r.stays.length, why).toBeLessThanOrEqual(8);
    expect(r.returns, why).toBeLessThanOrEqual(2);
  }, 60_000);

  it('no trainer file is over 350 lines', () => {
    const long = readdirSync(trainer)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => ({ f, lines: readFileSync(join(trainer, f), 'utf8').split('\n').length - 1 }))
      .filter(({ lines }) => lines > 350);
    expect(long).toEqual([]);
  });
});
