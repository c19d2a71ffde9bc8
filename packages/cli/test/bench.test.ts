import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type BenchDoc, mergeAndWrite, newDoc, sectionWriter } from '../src/bench/results.js';
import { parseTiles } from '../src/bench/scan.js';
import { BIN, expectOneLine, t2md } from './cli.js';

// The quick sizes on wasm, cut further with --sizes where the full quick sweep would take a while on a
// 2-core machine (wasm's attention and Mamba kernels are plain loops). --allow-dirty: a checkout being
// edited is dirty; the rows then say so, which the provenance test checks against git.
const dir = mkdtempSync(join(tmpdir(), 't2md-bench-'));
const out = join(dir, 'results.json');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Row = Record<string, unknown>;

const git = (args: string[], cwd?: string) => execFileSync('git', args, { encoding: 'utf8', ...(cwd ? { cwd } : {}) }).trim();

function bench(which: string, sizes?: string, quickFlag = true, extra: string[] = []) {
  const args = [
    'bench',
    which,
    ...(quickFlag ? ['--quick'] : []),
    '--json',
    '--out',
    out,
    '--allow-dirty',
    ...(sizes ? ['--sizes', sizes] : []),
    ...extra,
  ];
  const r = t2md(args, { T2MD_BACKEND: 'wasm' });
  expect(r.code, r.stderr).toBe(0);
  const doc = JSON.parse(r.stdout); // stdout is one JSON document and nothing else
  expect(doc).toMatchObject({ backend: 'wasm', adapter: null, file: out });
  expect(doc.device).toMatch(/wasm/);
  expect(Object.keys(doc)).toEqual(
    expect.arrayContaining(['device', 'adapter', 'commit', 'scaling', 'scan', 'attention', 'matmul', 'elementwise', 'baselines']),
  );
  // the last write of the file says the run measured every point
  expect(doc.runs[which]).toMatchObject({ backend: 'wasm', quick: true, complete: true });
  expect(JSON.parse(readFileSync(out, 'utf8')).runs[which].complete).toBe(true);
  for (const other of ['scan', 'attention', 'scaling', 'matmul', 'elementwise'].filter((s) => s !== which)) {
    expect(doc[other]).toEqual([]);
  }
  const rows = doc[which] as Row[];
  expect(rows.length).toBeGreaterThan(0);
  for (const row of rows) expect(row.error, JSON.stringify(row)).toBeUndefined();
  // every row names the commit git has checked out, and says whether the tree differed from it
  const dirty = git(['status', '--porcelain']) !== '';
  for (const row of rows) {
    expect(row.run).toMatchObject({
      commit: git(['rev-parse', 'HEAD']),
      backend: 'wasm',
      quick: true,
      card: 'wasm',
      driver: null,
      dawn: null,
    });
    expect((row.run as Row).dirty).toBe(dirty ? true : undefined);
  }
  return { rows, stderr: r.stderr };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const positive = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0;

describe('t2md bench', () => {
  it('scan --quick: ssdScan over chunk sizes, the reference, selectiveScan', () => {
    const { rows, stderr } = bench('scan');
    expect(stderr).toMatch(/bench scan on .*wasm.*quick sizes/);
    const kernel = rows.filter((r) => r.op === 'ssdScan' && r.impl === 'kernel');
    // L ∈ {256, 1024} × Q ∈ {64, 128, 256} × {forward, forward+backward}
    expect(kernel).toHaveLength(12);
    expect(new Set(kernel.map((r) => r.chunkSize))).toEqual(new Set([64, 128, 256]));
    for (const r of rows) {
      expect(positive(r.ms), JSON.stringify(r)).toBe(true);
      expect(positive(r.gbps), JSON.stringify(r)).toBe(true);
      expect(r.ms).toBe((r.runs as number[]).slice().sort((a, b) => a - b)[1]); // median of 3 runs
    }
    const refs = rows.filter((r) => r.impl === 'tfjs-ref' && r.pass === 'forward');
    expect(refs.map((r) => `${r.op}@${r.L}`)).toEqual(['ssdScan@256', 'selectiveScan@256', 'ssdScan@1024']);
    for (const r of refs) expect(r.relErr as number).toBeLessThan(1e-5); // the kernel agrees with the reference
    expect(rows.some((r) => r.op === 'selectiveScan' && r.pass === 'forward+backward')).toBe(true);
  });

  it('matmul --quick and elementwise --quick: off WebGPU they time tfjs only, with positive figures', () => {
    const mm = bench('matmul').rows;
    expect(new Set(mm.map((r) => r.variant))).toEqual(new Set(['tfjs']));
    for (const r of mm) expect(r.unroll).toBeNull(); // tfjs's matMul has no unroll
    for (const r of mm) expect((r.run as Row).settings).toBeUndefined(); // each row names its own variant
    for (const r of mm) expect(positive(r.ms) && positive(r.tflops), JSON.stringify(r)).toBe(true);
    const ew = bench('elementwise').rows;
    expect(ew.length).toBeGreaterThan(3);
    for (const r of ew) expect(positive(r.ms) && positive(r.gbps), JSON.stringify(r)).toBe(true);
  });

  it('attention on a software backend uses the quick sizes by itself: forward, forward+backward, naive', () => {
    const { rows, stderr } = bench('attention', '256', false);
    expect(stderr).toMatch(/note: .* is a software backend: the full sizes need a real GPU, so the --quick sizes were used/);
    expect(rows).toHaveLength(1);
    const r = rows[0]!;
    expect(r).toMatchObject({ batch: 1, heads: 4, tokens: 256, headDim: 32 });
    for (const k of ['fwdMs', 'fwdBwdMs', 'fwdTflops', 'naiveFwdMs', 'naiveFwdBwdMs']) expect(positive(r[k]), k).toBe(true);
    expect(r.relErrVsNaive as number).toBeLessThan(1e-5);
  });

  it('scaling --quick: teacher vs student at the batches asked for with a split and memory, merged into one file', () => {
    const { rows } = bench('scaling', '64', true, ['--batches', '2,1']);
    expect(rows.map((r) => [r.tokens, r.batch])).toEqual([
      [64, 2],
      [64, 1],
    ]);
    for (const r of rows) {
      for (const k of ['teacherMs', 'studentMs', 'ratio', 'teacherMB', 'studentMB', 'teacherAttnMs', 'studentAttnMs', 'studentMambaMs']) {
        expect(positive(r[k]), `${k} in ${JSON.stringify(r)}`).toBe(true);
      }
      expect(r.ratio).toBeCloseTo((r.teacherMs as number) / (r.studentMs as number), 2);
      expect(r.latent).toBe(16); // 8×8 tokens at patch 2
      expect(r.teacherMB as number).toBeGreaterThan(r.teacherWeightsMB as number); // weights plus activations
      expect(Number.isFinite(r.teacherRestMs)).toBe(true);
      // linear runs gemm's defaults, and the rows say so
      expect((r.run as Row).settings).toEqual({ gemm: { variant: 'auto', unroll: 16 } });
    }
    // the five runs merged into one file, each section kept
    const file = JSON.parse(readFileSync(out, 'utf8'));
    expect(file.scan.length).toBeGreaterThan(0);
    expect(file.matmul.length).toBeGreaterThan(0);
    expect(file.elementwise.length).toBeGreaterThan(0);
    expect(file.attention).toHaveLength(1);
    expect(file.scaling).toHaveLength(2);
    expect(Object.keys(file.runs).sort()).toEqual(['attention', 'elementwise', 'matmul', 'scaling', 'scan']);
  });

  it('writes the file after every point with complete: false; stopped by SIGTERM mid-section, it keeps that write', async () => {
    const file = join(dir, 'stopped.json');
    // the second point is 16 times the first's tokens, so it is still running when the signal comes
    const args = ['bench', 'scaling', '--quick', '--sizes', '64,1024', '--batches', '1', '--out', file, '--allow-dirty'];
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, T2MD_BACKEND: 'wasm' } });
    let stderr = '';
    let atSecond: string | undefined;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      // the second point starts after the first was written: read the file, then stop the run (as `timeout` does)
      if (atSecond == null && /scaling: 1024 tokens .*, batch 1\n/.test(stderr)) {
        atSecond = readFileSync(file, 'utf8');
        child.kill('SIGTERM');
      }
    });
    const [code, signal] = await once(child, 'exit');
    expect({ code, signal }, stderr).toEqual({ code: null, signal: 'SIGTERM' });
    const partial = JSON.parse(atSecond!);
    expect(partial.runs.scaling).toMatchObject({ backend: 'wasm', quick: true, complete: false });
    expect(partial.scaling.map((r: Row) => [r.tokens, r.batch])).toEqual([[64, 1]]);
    expect(positive(partial.scaling[0].teacherMs) && positive(partial.scaling[0].studentMs)).toBe(true);
    // killed mid-point: the file is still the last whole write, and no temporary file is left beside it
    expect(readFileSync(file, 'utf8')).toBe(atSecond);
    expect(readdirSync(dir).filter((f) => f.includes('stopped.json') && f !== 'stopped.json')).toEqual([]);
  });

  it('train --quick: both training steps with ms, samples/s and host time; bad batch lists exit 2', () => {
    const { rows, stderr } = bench('train');
    expect(rows.map((r) => `${r.step} ${r.batch}`)).toEqual(['teacher 4', 'distill 4']);
    for (const r of rows) {
      expect(r).toMatchObject({ impl: 't2md', preset: 'tiny', kernelsPerStep: null });
      expect(r.msPerStep as number).toBeGreaterThan(0);
      expect(r.samplesPerSec as number).toBeCloseTo((1000 * 4) / (r.msPerStep as number), 0);
      expect(r.hostMsPerStep as number).toBeGreaterThan(0);
      expect(r.blocksMs as number[]).toHaveLength(3);
      expect(r.profile).toBeUndefined(); // profiles are WebGPU's (timestamp queries)
    }
    expect(stderr).toMatch(/train teacher batch 4: [\d.]+ ms\/step/);
    expectOneLine(t2md(['bench', 'train', '--batches', '4,x']), /--batches must be batch sizes separated by commas/);
  });

  it('train --recompute distill: the distill step with activation recomputation, recorded in its row; a bad step list exits 2', () => {
    const { rows, stderr } = bench('train', undefined, true, ['--step', 'distill', '--recompute', 'distill']);
    expect(rows.map((r) => `${r.step} ${r.batch} ${r.recompute}`)).toEqual(['distill 4 true']);
    expect(rows[0]!.msPerStep as number).toBeGreaterThan(0);
    expect(stderr).toMatch(/train distill \(recompute\) batch 4: [\d.]+ ms\/step/);
    expectOneLine(
      t2md(['bench', 'train', '--recompute', 'student']),
      /--recompute takes train steps separated by commas \(teacher, distill\)/,
    );
  });

  it('scan --tiles: tile names from SSD_GEMM_TILES or all, deduplicated; anything else exits 2 with one sentence', () => {
    expect(parseTiles('8x8, 4x4,8x8')).toEqual(['8x8', '4x4']);
    expect(parseTiles('all')).toEqual(['4x4', '4x4p', '8x4', '4x8', '8x8']);
    expectOneLine(
      t2md(['bench', 'scan', '--tiles', '4x4,16x16']),
      /--tiles takes GEMM tiles separated by commas \(4x4, 4x4p, 8x4, 4x8, 8x8\) or all, got '4x4,16x16'/,
    );
  });

  it('sample: ms per image-step of the shipped models, their GFLOP/s as a share of matMul on the same shapes, and a profile', () => {
    const { rows, stderr } = bench('sample', undefined, true, ['--batches', '1,2', '--steps', '2']);
    expect(rows.map((r) => `${r.model} ${r.batch}`)).toEqual(['teacher 1', 'teacher 2', 'student 1', 'student 2']);
    for (const r of rows) {
      expect(r.stepsMs as number[]).toHaveLength(2);
      // rounded as the bench rounds (toFixed): Math.round sends a median ending in 5 the other way
      expect(r.msPerStep).toBe(Number(median(r.stepsMs as number[]).toFixed(1)));
      expect(r.msPerImageStep as number).toBeCloseTo((r.msPerStep as number) / (r.batch as number), 0);
      for (const k of ['gflopPerImageStep', 'gflops', 'matmulGflops', 'shareOfMatmul', 'profileMs']) expect(positive(r[k]), k).toBe(true);
      expect(r.shareOfMatmul as number).toBeCloseTo((r.gflops as number) / (r.matmulGflops as number), 2);
      const ops = (r.profile as Row[]).map((o) => o.op);
      // wasm's per-kernel wall times: the linear layers' products (with a bias, tfjs's fused matMul)
      expect(
        ops.filter((o) => o === 'BatchMatMul' || o === '_FusedMatMul'),
        `ops ${ops.join(', ')}`,
      ).not.toEqual([]);
      expect((r.run as Row).settings).toMatchObject({ gemm: { variant: 'auto', unroll: 16 }, wasm: { build: expect.any(String) } });
    }
    // the student's bidirectional Mamba mixers are counted with their scans
    expect(rows[2]!.layout).not.toBe(rows[0]!.layout);
    expect(stderr).toMatch(/sample teacher batch 1: [\d.]+ ms\/step, [\d.]+ ms per image-step, [\d.]+ GFLOP\/s = \d+% of matMul's/);
    expectOneLine(t2md(['bench', 'sample', '--model', ' , ']), /--model must name models \(teacher, student or files\)/);
  });

  it('exits 2 with one line on an unknown benchmark or a results file it cannot merge into', () => {
    const r = t2md(['bench', 'gemv'], { T2MD_BACKEND: 'wasm' });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^t2md: unknown benchmark 'gemv'; choose one of scan, attention, scaling, matmul, elementwise, train/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, 'not json');
    const r2 = t2md(['bench', 'scan', '--quick', '--out', bad], { T2MD_BACKEND: 'wasm' });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/bad\.json exists but is not JSON/);
    expect(readFileSync(bad, 'utf8')).toBe('not json'); // left alone
  });

  it('refuses a dirty tree unless --allow-dirty, then stamps the rows dirty; writes no file outside the repository without --out', () => {
    // a scratch checkout of a repository named like this one, with one commit and then a change
    const repo = join(dir, 'repo');
    mkdirSync(repo);
    writeFileSync(join(repo, 'package.json'), JSON.stringify({ name: 't2md-monorepo', private: true }));
    git(['init', '-q'], repo);
    git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'add', '.'], repo);
    git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'one'], repo);
    const head = git(['rev-parse', 'HEAD'], repo);
    writeFileSync(join(repo, 'new.txt'), 'changed');
    const args = ['bench', 'elementwise', '--quick', '--sizes', '4096', '--json'];
    expectOneLine(
      t2md(args, { T2MD_BACKEND: 'wasm' }, 300_000, repo),
      /the tree differs from commit .*git status is not clean.*--allow-dirty/,
    );
    const r = t2md([...args, '--allow-dirty'], { T2MD_BACKEND: 'wasm' }, 300_000, repo);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    for (const row of doc.elementwise) expect(row.run).toMatchObject({ commit: head, dirty: true });
    // inside the repository the file goes to bench/results/<date>-<card>-quick.json
    expect(doc.file).toMatch(/repo\/bench\/results\/\d{4}-\d\d-\d\d-wasm-quick\.json$/);
    expect(existsSync(doc.file)).toBe(true);
    // outside any checkout: printed, not written
    const away = mkdtempSync(join(tmpdir(), 't2md-away-'));
    const r2 = t2md(['bench', 'elementwise', '--quick', '--sizes', '4096', '--json'], { T2MD_BACKEND: 'wasm' }, 300_000, away);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toMatch(/not inside the T2MD repository and no --out given: the results were not written/);
    expect(JSON.parse(r2.stdout).file).toBeNull();
    expect(existsSync(join(away, 'bench'))).toBe(false);
    rmSync(away, { recursive: true, force: true });
  });

  it('merges rows of one sweep split over calls, replaces them for another commit, keeps other sections', () => {
    const file = join(dir, 'merge.json');
    writeFileSync(file, JSON.stringify({ device: 'd', baselines: [{ impl: 'torch-sdpa' }], attention: { legacy: true } }));
    const dev = { device: 'd', card: 'c', backend: 'wasm' as const, adapter: null, software: true };
    const doc = (commit: string, rows: Record<string, unknown>[]): BenchDoc =>
      newDoc(dev, 'scaling', rows, { date: '2026-01-01T00:00:00Z', commit, backend: 'wasm', quick: false }, ['n']);
    mergeAndWrite(file, doc('a', [{ tokens: 1024, batch: 1, teacherMs: 1 }]), 'scaling');
    mergeAndWrite(
      file,
      doc('a', [
        { tokens: 4096, batch: 1, teacherMs: 2 },
        { tokens: 1024, batch: 1, teacherMs: 3 },
      ]),
      'scaling',
    );
    const bare = (rows: Row[]) => rows.map(({ run, ...r }) => r);
    let got = JSON.parse(readFileSync(file, 'utf8'));
    expect(bare(got.scaling)).toEqual([
      { tokens: 1024, batch: 1, teacherMs: 3 },
      { tokens: 4096, batch: 1, teacherMs: 2 },
    ]);
    for (const row of got.scaling) expect(row.run).toMatchObject({ commit: 'a', card: 'c', device: 'd', backend: 'wasm', quick: false });
    expect(got.baselines).toEqual([{ impl: 'torch-sdpa' }]);
    expect(got.attention).toEqual({ legacy: true });
    mergeAndWrite(file, doc('b', [{ tokens: 256, batch: 2, teacherMs: 4 }]), 'scaling');
    got = JSON.parse(readFileSync(file, 'utf8'));
    expect(bare(got.scaling)).toEqual([{ tokens: 256, batch: 2, teacherMs: 4 }]);
    expect(got.commit).toBe('b');
    expect(got.runs.scaling.commit).toBe('b');
  });

  it("keeps the scan's chunked and segmented rows apart when the same sweep is merged into a file again", () => {
    const dev = { device: 'd', card: 'c', backend: 'webgpu' as const, adapter: null, software: false };
    const meta = { date: '2026-01-01T00:00:00Z', commit: 'a', backend: 'webgpu', quick: false, complete: true };
    const key = { op: 'ssdScan', impl: 'kernel', pass: 'forward', L: 256, heads: 4, headdim: 16, dstate: 8, chunkSize: 64 };
    const sweep = (ms: number) =>
      newDoc(
        dev,
        'scan',
        [
          { ...key, variant: 'chunked', ms },
          { ...key, variant: 'segmented', ms: ms + 1 },
        ],
        meta,
        ['n'],
      );
    const path = join(dir, 'variants.json');
    mergeAndWrite(path, sweep(1), 'scan');
    mergeAndWrite(path, sweep(5), 'scan'); // the same sweep measured again replaces each variant's row
    const got = JSON.parse(readFileSync(path, 'utf8'));
    expect(got.scan.map((r: Row) => [r.variant, r.ms])).toEqual([
      ['chunked', 5],
      ['segmented', 6],
    ]);
  });

  it('a section rewritten after every point ends as one write at the end would leave it, keeping a section written meanwhile', () => {
    const dev = { device: 'd', card: 'c', backend: 'wasm' as const, adapter: null, software: true };
    const meta = { date: '2026-01-01T00:00:00Z', commit: 'a', backend: 'wasm', quick: true };
    const scan = (rows: Row[], complete: boolean) => newDoc(dev, 'scan', rows, { ...meta, complete }, ['n']);
    const key = { op: 'ssdScan', impl: 'kernel', pass: 'forward', heads: 4, headdim: 16, dstate: 8, chunkSize: 64 };
    // this sweep's row of another length, from an earlier call; then the run's two rows, which share a key
    const earlier = { ...key, L: 64, variant: 'chunked', ms: 9 };
    const [chunked, segmented] = [
      { ...key, L: 256, variant: 'chunked', ms: 1 },
      { ...key, L: 256, variant: 'segmented', ms: 2 },
    ];
    const attention = newDoc(dev, 'attention', [{ batch: 1, heads: 4, tokens: 256, headDim: 32, fwdMs: 3 }], meta, ['n']);
    const [points, oneShot] = [join(dir, 'points.json'), join(dir, 'one-shot.json')];
    mergeAndWrite(points, scan([earlier], true), 'scan');
    copyFileSync(points, oneShot);

    const write = sectionWriter(points, 'scan');
    write(scan([chunked], false));
    const partial = JSON.parse(readFileSync(points, 'utf8'));
    expect(partial.runs.scan.complete).toBe(false);
    expect(partial.scan.map((r: Row) => [r.L, r.variant])).toEqual([
      [64, 'chunked'],
      [256, 'chunked'],
    ]);
    mergeAndWrite(points, attention, 'attention'); // another run, meanwhile
    write(scan([chunked, segmented], true));

    mergeAndWrite(oneShot, attention, 'attention');
    mergeAndWrite(oneShot, scan([chunked, segmented], true), 'scan');
    const final = readFileSync(points, 'utf8');
    expect(final).toBe(readFileSync(oneShot, 'utf8'));
    const got = JSON.parse(final);
    expect(got.scan.map((r: Row) => [r.L, r.variant])).toEqual([
      [64, 'chunked'],
      [256, 'chunked'],
      [256, 'segmented'],
    ]);
    expect(got.attention).toHaveLength(1);
    expect(got.runs.scan.complete).toBe(true);
  });
});
