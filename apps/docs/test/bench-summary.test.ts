// The benchmarks page's summary and tables, computed from results files: here the superseded H100 run
// kept as a fixture (test/fixtures/README.md), so the pinned numbers do not move when bench/results/ does.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TIMING_FIELD as BENCH_TIMING_FIELD } from '../../../packages/cli/src/bench/results.js';
import {
  byCard,
  cell,
  failedPoints,
  fmtRatio,
  header,
  headlines,
  niceTicks,
  type ResultFile,
  type Row,
  TIMING_FIELD,
  tables,
  trainSeries,
} from '../components/bench-summary.js';

const results = resolve(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const files: ResultFile[] = readdirSync(results)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .reverse()
  .map((f) => ({ name: f.replace(/\.json$/, ''), data: JSON.parse(readFileSync(join(results, f), 'utf8')) }));

describe('benchmark headlines', () => {
  const all = headlines(files);

  it('state every ratio with its peer and card, from the newest file that has the section', () => {
    expect(all.length).toBeGreaterThanOrEqual(5);
    for (const h of all) {
      expect(h.ratio).toBeGreaterThan(0);
      expect(h.peer).not.toBe('');
      expect(h.card).toMatch(/\S/);
      expect(h.card).not.toMatch(/ · |\(webgpu\)/);
    }
  });

  it("match the H100 fixture's numbers (the student's speed-up, attention against SDPA)", () => {
    const h100 = all.filter((h) => h.file === '2026-11-26-h100');
    const at = (what: RegExp) => h100.find((h) => what.test(h.what));
    expect(fmtRatio(at(/student forward, 16,384 tokens/)!.ratio)).toBe('1.50×');
    expect(fmtRatio(at(/student forward, 32,400 tokens/)!.ratio)).toBe('2.27×');
    expect(at(/student forward, 16,384 tokens/)).toMatchObject({ ours: '1,360 ms', peer: 'teacher, 2,044 ms' });
    const att = at(/^attention forward, 16 heads × 32,400 tokens × 72/)!;
    expect(att).toMatchObject({ ours: '217 ms', peer: 'PyTorch SDPA, 168 ms' });
    expect(att.ratio).toBeCloseTo(0.772, 3);
    expect(at(/^ssdScan forward/)?.peer).toMatch(/^PyTorch, chunked scan, /);
    expect(at(/^GEMM /)?.peer).toMatch(/^PyTorch F\.linear/);
    expect(h100.every((h) => h.card === 'NVIDIA H100 80GB HBM3')).toBe(true);
    expect(byCard(all).map((g) => [g.card, g.files])).toEqual([['NVIDIA H100 80GB HBM3', ['2026-11-26-h100']]]);
  });

  it('tolerate sections they do not know and chart train rows as samples/s by batch per implementation', () => {
    const rows = [
      { step: 'teacher', batch: 64, samplesPerSec: 900, msPerStep: 71, kernelsPerStep: 900, impl: 't2md', commit: 'abc', card: 'H200' },
      { step: 'teacher', batch: 512, samplesPerSec: 4100, msPerStep: 125, kernelsPerStep: 900, impl: 't2md', commit: 'abc', card: 'H200' },
      {
        step: 'teacher',
        batch: 512,
        samplesPerSec: 8200,
        msPerStep: 62,
        kernelsPerStep: 40,
        impl: 'torch-f32',
        commit: 'abc',
        card: 'H200',
      },
    ];
    const file = {
      name: 'synthetic',
      data: { device: 'NVIDIA H200 (webgpu)', train: rows, mystery: [{ a: 1 }, { a: 2 }], extra: { x: 1 } },
    };
    const h = headlines([file]);
    expect(h).toEqual([
      {
        section: 'train',
        what: 'training step (teacher), batch 512',
        ours: '4,100 samples/s',
        peer: 'torch-f32, 8,200 samples/s',
        ratio: 0.5,
        card: 'NVIDIA H200',
        file: 'synthetic',
      },
    ]);
    expect(tables(file.data).map((t) => t.title)).toEqual(['train', 'mystery']);
    const series = trainSeries(rows, 'teacher');
    expect(series.map((s) => s.name)).toEqual(['T2MD.js (WebGPU)', 'torch-f32']);
    expect(series[0].points).toEqual([
      [64, 900],
      [512, 4100],
    ]);
  });
});

describe('a failed row', () => {
  const oom = {
    step: 'distill',
    batch: 1024,
    impl: 't2md',
    samplesPerSec: 10187,
    msPerStep: 100.5,
    kernelsPerStep: 930,
    error: 'WebGPU reported 1 error(s): Out of memory',
  };
  const file: ResultFile = {
    name: 'oom',
    data: {
      device: 'NVIDIA H100 (webgpu)',
      train: [
        { step: 'distill', batch: 512, impl: 't2md', samplesPerSec: 1600, msPerStep: 320, kernelsPerStep: 930 },
        oom,
        { step: 'distill', batch: 512, impl: 'torch-f32', samplesPerSec: 1400, msPerStep: 365 },
        { step: 'distill', batch: 1024, impl: 'torch-f32', samplesPerSec: 1410, msPerStep: 726 },
      ],
    },
  };

  it('shows its error and no timing, even where the file holds one beside it', () => {
    // the headline falls back to the largest batch that was measured
    expect(headlines([file]).map((h) => [h.what, h.ours])).toEqual([['training step (distill), batch 512', '1,600 samples/s']]);
    const [t] = tables(file.data);
    const col = (key: string) => t.columns.findIndex((c) => c.key === key);
    const failed = t.rows[1];
    expect(failed[col('error')].text).toMatch(/^WebGPU reported 1 error/);
    expect(failed[col('samplesPerSec')].text).toBe('—');
    expect(failed[col('msPerStep')].text).toBe('—');
    expect(failed[col('kernelsPerStep')].text).toBe('930'); // a count, not a timing
    expect(trainSeries(file.data.train as Row[], 'distill')[0].points).toEqual([[512, 1600]]);
  });

  it('is marked on its chart at the x it would have had, with its error', () => {
    expect(failedPoints(file.data.train, 'batch', (r) => r.step === 'distill')).toEqual([
      { x: 1024, label: 'batch 1,024: failed (WebGPU reported 1 error(s): Out of memory)' },
    ]);
    expect(failedPoints(file.data.train, 'batch', (r) => r.step === 'teacher')).toEqual([]);
    const scaling = [
      { tokens: 16384, batch: 1, teacherMs: 2080, studentMs: 1142, teacherDeviceMB: 4937, studentDeviceMB: 5482 },
      { tokens: 32400, batch: 2, teacherMs: null, studentMs: null, error: 'WebGPU reported 3 error(s): Out of memory' },
    ];
    expect(failedPoints(scaling, 'tokens')).toEqual([
      { x: 32400, label: 'tokens 32,400, batch 2: failed (WebGPU reported 3 error(s): Out of memory)' },
    ]);
    expect(failedPoints(scaling, 'tokens', (r) => r.batch === 1)).toEqual([]);
    // the device-true peaks get headers; files without them (older runs) table as before
    const [t] = tables({ scaling });
    expect(t.columns.map((c) => c.header)).toEqual(expect.arrayContaining(['teacher device peak (MiB)', 'student device peak (MiB)']));
    expect(header('devicePeakMB')).toBe('device peak (MiB)');
  });

  it("is judged by the bench's own pattern of timing fields", () => {
    expect(TIMING_FIELD.source).toBe(BENCH_TIMING_FIELD.source);
    expect(TIMING_FIELD.flags).toBe(BENCH_TIMING_FIELD.flags);
  });
});

describe('sampling headlines', () => {
  it("state each model's step rate against matMul's on the same shapes, at the most images measured", () => {
    const row = (model: string, batch: number, ms: number, gflops: number) => ({
      model,
      batch,
      msPerImageStep: ms,
      gflops,
      matmulGflops: 40,
    });
    const data = {
      device: 'AMD EPYC ×2 (wasm)',
      sample: [row('teacher', 1, 170, 14), row('teacher', 16, 117, 21), row('student', 16, 172, 17)],
    };
    expect(headlines([{ name: 'wasm', data }])).toEqual([
      {
        section: 'sample',
        what: 'sampling step (teacher), 16 images: 117 ms per image-step',
        ours: '21.0 GFLOP/s',
        peer: 'tf.matMul, same shapes, 40.0 GFLOP/s',
        ratio: 21 / 40,
        card: 'AMD EPYC ×2',
        file: 'wasm',
      },
      {
        section: 'sample',
        what: 'sampling step (student), 16 images: 172 ms per image-step',
        ours: '17.0 GFLOP/s',
        peer: 'tf.matMul, same shapes, 40.0 GFLOP/s',
        ratio: 17 / 40,
        card: 'AMD EPYC ×2',
        file: 'wasm',
      },
    ]);
    expect(header('msPerImageStep')).toBe('ms per image-step');
  });
});

describe('benchmark tables', () => {
  const all = files.flatMap((f) => tables(f.data));

  it('have human headers with units, short cells and no column that is empty throughout', () => {
    expect(header('teacherAttnMs')).toBe('teacher attn (ms)');
    expect(header('teacherWeightsMB')).toBe('teacher weights (MiB)');
    expect(header('samplesPerSec')).toBe('samples/s');
    for (const t of all) {
      for (const [i, c] of t.columns.entries()) {
        expect(c.header, t.title).not.toMatch(/^[a-z]+[A-Z]\w*$/); // no raw camelCase keys
        expect(
          t.rows.some((r) => r[i].text !== '—'),
          `${t.title}: ${c.key}`,
        ).toBe(true);
      }
      for (const r of t.rows) for (const c of r) expect(c.text.length, `${t.title}: ${c.text}`).toBeLessThanOrEqual(40);
    }
    const baselines = all.filter((t) => t.title.startsWith('baselines: '));
    expect(baselines.map((t) => t.title)).toEqual(expect.arrayContaining(['baselines: attention', 'baselines: matmul']));
    const scan = all.find((t) => t.title === 'scan' && t.constant.includes('heads 36'));
    expect(scan?.columns.map((c) => c.key)).not.toContain('heads'); // constant columns are stated once
  });

  it('print numbers for people', () => {
    expect(cell(13740.2).text).toBe('13,740');
    expect(cell(16384).text).toBe('16,384');
    expect(cell(54.0331).text).toBe('54.03');
    expect(cell(0.4023).text).toBe('0.4023');
    expect(cell(346.373).text).toBe('346.4');
    expect(cell(9.97e-7).text).toBe('9.97e-7');
    expect(cell(null).text).toBe('—');
    expect(cell('x'.repeat(851))).toEqual({ text: `${'x'.repeat(37)}…`, title: 'x'.repeat(851) });
  });

  it('give round axis ticks', () => {
    expect(niceTicks(70, 1300, true)).toEqual([100, 200, 500, 1000]);
    expect(niceTicks(0, 2.4, false)).toEqual([0, 0.5, 1, 1.5, 2]);
  });
});
