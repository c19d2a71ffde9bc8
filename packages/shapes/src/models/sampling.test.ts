import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseSteps, FALLBACK_STEPS, parseStepTable, type StepTable, sha256Hex, shippedSampling, shippedStepTable } from './sampling.js';

const rows = [
  { steps: 6, overall: 0.6 },
  { steps: 8, overall: 0.648 },
  { steps: 10, overall: 0.683 },
  { steps: 15, overall: 0.673 },
  { steps: 20, overall: 0.683 },
];
const file = { bytes: 1234, sha256: 'ab'.repeat(32) };
const table: StepTable = {
  schema: 1,
  tolerance: 0.01,
  reference: 20,
  eval: { prompts: 200, seed: 0, sampler: 'dpmpp-2m', cfg: 4.5, batch: 25, backend: 'webgpu' },
  models: { teacher: { file, steps: 10, table: rows, card: 'h100', commit: 'abc', date: '2026-12-06' } },
  command: 'node bench/step-table.mjs',
};

describe('chooseSteps', () => {
  it('takes the fewest steps within the tolerance of the reference score', () => {
    // the GPU eval of the 32-px teacher: 8 steps lose 0.035, 10 match 20
    expect(chooseSteps(rows, 0.01, 20)).toBe(10);
    expect(chooseSteps(rows, 0.04, 20)).toBe(8);
    expect(chooseSteps(rows, 0, 20)).toBe(10);
    expect(chooseSteps(rows, 1, 20)).toBe(6);
    expect(chooseSteps(rows, 0.01, 15)).toBe(10); // a lower reference: 10 beats 15's score
  });

  it('needs a row at the reference', () => {
    expect(() => chooseSteps(rows, 0.01, 12)).toThrow(/no row at 12 steps, the reference/);
  });
});

describe('parseStepTable', () => {
  it('accepts a table whose chosen steps follow from its rows, and names what is wrong otherwise', () => {
    expect(parseStepTable(table)).toBe(table);
    const wrong = { ...table, models: { teacher: { ...table.models.teacher!, steps: 8 } } };
    expect(() => parseStepTable(wrong)).toThrow(/teacher\.steps is 8 but its table chooses 10; regenerate it with bench\/step-table\.mjs/);
    expect(() => parseStepTable({ ...table, schema: 2 })).toThrow(/schema 2 is not 1/);
    const noHash = { ...table, models: { teacher: { ...table.models.teacher!, file: { bytes: 3 } } } };
    expect(() => parseStepTable(noHash)).toThrow(/teacher names no model file/);
    const badRow = { ...table, models: { teacher: { ...table.models.teacher!, table: [...rows, { steps: 4, overall: 2 }] } } };
    expect(() => parseStepTable(badRow)).toThrow(/bad row/);
  });
});

describe('shippedSampling', () => {
  it("gives the table's steps for the file it was measured on, with the score they keep", () => {
    const s = shippedSampling('teacher', file, table);
    expect(s.measured).toBe(true);
    expect(s.steps).toBe(10);
    expect(s.table).toEqual(rows);
    expect(s.note).toBe(
      "10 steps: the fewest whose eval score (0.683) is within 0.01 of 20 steps' (0.683); 200 prompts, seed 0, dpmpp-2m, cfg 4.5, on h100.",
    );
  });

  it('refuses a table measured on other bytes, or with no row for the model, and says what to run', () => {
    const stale = shippedSampling('teacher', { bytes: 1234, sha256: 'cd'.repeat(32) }, table);
    expect(stale).toMatchObject({ measured: false, steps: FALLBACK_STEPS, table: [] });
    expect(stale.note).toMatch(
      /^the step table was measured on another teacher\.safetensors \(1234 bytes, sha256 abababababab…; this one: 1234 bytes, cdcdcdcdcdcd…\); using 20 steps\. Regenerate models\/sampling\.json with bench\/step-table\.mjs\.$/,
    );
    expect(shippedSampling('teacher', { ...file, bytes: 99 }, table).measured).toBe(false);
    expect(shippedSampling('student', file, table).note).toMatch(/has no row for the student model; using 20 steps/);
  });

  it('covers the model files this package ships (the committed table is not stale)', async () => {
    const t = shippedStepTable();
    for (const name of ['teacher', 'student'] as const) {
      const bytes = new Uint8Array(readFileSync(join(__dirname, '..', '..', 'models', `${name}.safetensors`)));
      const sha256 = await sha256Hex(bytes);
      expect(sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      const s = shippedSampling(name, { bytes: bytes.length, sha256 }, t);
      expect(s.measured, s.note).toBe(true);
      expect(s.table.map((r) => r.steps)).toContain(t.reference);
      expect(s.steps).toBeLessThanOrEqual(t.reference);
    }
  });
});
