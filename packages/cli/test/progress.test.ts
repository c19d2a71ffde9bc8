/**
 * Progress on stderr: plain lines when stderr is not a terminal, and the WebGPU shader-compile notice,
 * which must appear while the main thread is blocked (tfjs compiles pipelines synchronously).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { fmtDuration, progress, progressLine, trainingBar } from '../src/progress.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-progress-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** Everything written to process.stderr while `fn` runs. */
function captureStderr(fn: () => void): string[] {
  const lines: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  fn();
  vi.restoreAllMocks();
  return lines;
}

describe('plain progress lines', () => {
  it('formats a count, fields, the rate and the ETA', () => {
    expect(progressLine('eval', 40, 500, { unit: 'steps', fields: { batch: '2/20' }, secondsPerUnit: 0.52, etaSeconds: 239 })).toBe(
      'eval 40/500 steps | batch 2/20 | 0.52 s/step | eta 4 min',
    );
    expect(progressLine('sample', 20, 20, { unit: 'steps', secondsPerUnit: 1, etaSeconds: 0 })).toBe('sample 20/20 steps | 1.00 s/step');
    expect([fmtDuration(42.4), fmtDuration(600), fmtDuration(5400), fmtDuration(Number.NaN)]).toEqual(['42 s', '10 min', '1.5 h', '?']);
  });

  it('writes the first update, one line per tenth and the last, never a redraw', () => {
    const lines = captureStderr(() => {
      const p = progress('sample', 40, { unit: 'steps', plain: true });
      for (let i = 1; i <= 40; i++) p.update(i);
      p.stop();
    });
    expect(lines).toHaveLength(11); // step 1 (tenth 0), then steps 4, 8, ..., 40
    expect(lines.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
    expect(lines[0]).toMatch(/^sample 1\/40 steps \| \d+\.\d\d s\/step \| eta /);
    expect(lines.at(-1)).toMatch(/^sample 40\/40 steps \| \d+\.\d\d s\/step\n$/);
  });

  it('uses the timing it is given (the trainer measures its own)', () => {
    const [line] = captureStderr(() =>
      progress('teacher', 10, { unit: 'steps', plain: true }).update(1, { loss: '0.5000' }, { secondsPerUnit: 2, etaSeconds: 18 }),
    );
    expect(line).toBe('teacher 1/10 steps | loss 0.5000 | 2.00 s/step | eta 18 s\n');
  });

  it("the training bar leaves the loss out until it is read back, and shows a slow rate's decimal", () => {
    const at = (step: number, loss: number) => ({
      stage: 'distill',
      step,
      total: 2,
      loss,
      secondsPerStep: 8.3,
      samplesPerSecond: 0.24,
      etaSeconds: 8,
    });
    const lines = captureStderr(() => {
      const bar = trainingBar({ backend: 'wasm' });
      bar.update(at(1, Number.NaN));
      bar.update(at(2, 0.0056));
      bar.stop();
    });
    expect(lines[0]).toBe('distill 1/2 steps | samples/s 0.2 | 8.30 s/step | eta 8 s\n');
    expect(lines[1]).toMatch(/^distill 2\/2 steps \| loss 0\.0056 \| samples\/s 0\.2 \| 8\.30 s\/step/);
  });
});

describe('the shader-compile notice', () => {
  /** Runs `body` in a child process with the progress module bundled in; returns its stderr. */
  async function runWithProgress(body: string): Promise<string> {
    const bundle = join(dir, 'progress.cjs');
    // The module asks @t2md/core which backend runs only when none is passed; a stub keeps tfjs out.
    const stub = join(dir, 'core-stub.mjs');
    writeFileSync(stub, 'export const currentBackend = () => undefined;\n');
    await build({
      entryPoints: [resolve(__dirname, '..', 'src', 'progress.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      outfile: bundle,
      alias: { '@t2md/core': stub },
      logLevel: 'silent',
    });
    const script = `const p = require(${JSON.stringify(bundle)});\n${body}`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    return r.stderr;
  }

  it('is written while the main thread is blocked, then says how long the first step took', async () => {
    const stderr = await runWithProgress(`
const n = p.firstStepNotice('webgpu', 200);
const t0 = Date.now();
while (Date.now() - t0 < 1500) {} // a first step that blocks, as Dawn's pipeline compiles do
n.done();`);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^t2md: compiling WebGPU shaders for the first step/);
    // at least the 1.5 s blocked; no upper bound: a child descheduled on a loaded 2-core CI machine for
    // 0.45 s around the end of the loop would print 2.0 s (a speed check belongs in a benchmark)
    expect(lines[1]).toMatch(/^t2md: shaders compiled; the first step took (1\.[5-9]|[2-9]\.\d|\d{2,}\.\d) s$/);
  });

  it('says nothing for a fast first step, a failed run, or another backend', async () => {
    const stderr = await runWithProgress(`
p.firstStepNotice('webgpu', 2000).done();
const failed = p.firstStepNotice('webgpu', 100);
const t0 = Date.now();
while (Date.now() - t0 < 1500) {}
failed.done(false);
const wasm = p.firstStepNotice('wasm', 0);
while (Date.now() - t0 < 1700) {}
wasm.done();`);
    // Only the failed run's notice itself (written by the watchdog before the failure) may appear.
    expect(stderr.trim().split('\n').filter(Boolean)).toEqual([expect.stringMatching(/^t2md: compiling WebGPU shaders/)]);
  });
});
