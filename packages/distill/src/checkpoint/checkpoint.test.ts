import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@t2md/core';
import { withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atomicWriteFile } from './atomic.js';
import { disposeCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { appendMetrics, readMetrics, truncateMetrics } from './metrics.js';

let dir: string;

describe('checkpoints (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    dir = mkdtempSync(join(tmpdir(), 't2md-ckpt-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips weights, optimizer moments, EMA and metadata bit-exactly, without leaks', async () => {
    const path = join(dir, 'latest.safetensors');
    const w = { 'model.a': tf.tensor1d([1.5, -2.25, Math.PI]), 'text_encoder.b': tf.tensor2d([[0.1, 0.2]], [1, 2]) };
    const m = { 'model.a': tf.tensor1d([1e-9, 2, 3]) };
    const v = { 'model.a': tf.tensor1d([4, 5, 6e-20]) };
    const ema = { 'model.a': tf.tensor1d([7, 8, 9]) };
    await withNoLeaks(() => saveCheckpoint(path, { weights: w, m, v, ema }, { 't2md.train': '{"step":3}' }));
    const ck = loadCheckpoint(path);
    expect(Object.keys(ck.weights).sort()).toEqual(['model.a', 'text_encoder.b']);
    expect(Array.from(await ck.weights['model.a'].data())).toEqual(Array.from(await w['model.a'].data()));
    expect(Array.from(await ck.m['model.a'].data())).toEqual(Array.from(await m['model.a'].data()));
    expect(Array.from(await ck.v['model.a'].data())).toEqual(Array.from(await v['model.a'].data()));
    expect(Array.from(await ck.ema['model.a'].data())).toEqual([7, 8, 9]);
    expect(ck.metadata['t2md.train']).toBe('{"step":3}');
    disposeCheckpoint(ck);
    tf.dispose([...Object.values(w), ...Object.values(m), ...Object.values(v), ...Object.values(ema)]);
  });

  it('a write that fails before its rename leaves the previous file whole and no temporary behind', async () => {
    const path = join(dir, 'ckpt.safetensors');
    const a = { 'model.x': tf.tensor1d([1, 2, 3]) };
    await saveCheckpoint(path, { weights: a }, { step: '1' });
    const good = readFileSync(path);
    const b = { 'model.x': tf.tensor1d([4, 5, 6]) };
    let tmpSeen = '';
    await expect(
      saveCheckpoint(
        path,
        { weights: b },
        { step: '2' },
        {
          beforeRename: (tmp) => {
            tmpSeen = tmp;
            // The temporary is complete and flushed at this point; the target is still the old file.
            expect(readFileSync(tmp).length).toBeGreaterThan(8);
            throw new Error('killed');
          },
        },
      ),
    ).rejects.toThrow('killed');
    expect(tmpSeen).toContain('.ckpt.safetensors.tmp-');
    expect(readFileSync(path).equals(good)).toBe(true);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    const ck = loadCheckpoint(path);
    expect(ck.metadata.step).toBe('1');
    disposeCheckpoint(ck);
    tf.dispose([...Object.values(a), ...Object.values(b)]);
  });

  it('kill -9 during writes never leaves a half-written file at the target', async () => {
    // A child process rewrites a 16 MB file in a loop through the real atomicWriteFile (bundled from
    // source by esbuild); we SIGKILL it mid-stream, several times, and check what is at the target.
    const entry = fileURLToPath(new URL('./atomic.ts', import.meta.url));
    const bundle = join(dir, 'atomic.mjs');
    buildSync({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', outfile: bundle, logLevel: 'silent' });
    const target = join(dir, 'big.bin');
    const script = join(dir, 'writer.mjs');
    writeFileSync(
      script,
      `import { atomicWriteFile } from ${JSON.stringify(bundle)};
const n = 16 << 20;
for (let k = 1; ; k++) {
  const bytes = new Uint8Array(n).fill(k % 251);
  atomicWriteFile(${JSON.stringify(target)}, bytes);
  if (k === 1) process.stdout.write('first\\n');
}
`,
    );
    let midWrite = 0;
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, 50 + 70 * round));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      if (readdirSync(dir).some((n) => n.startsWith('.big.bin.tmp-'))) midWrite++;
      const got = readFileSync(target);
      expect(got.length).toBe(16 << 20);
      // Every byte is the same value: one complete write, not a mix of two.
      expect(got.every((x) => x === got[0])).toBe(true);
    }
    console.log(`kill -9 test: ${midWrite} of 3 kills landed while a temporary was being written`);
    // Temporaries of killed writes may be left; the next save removes them.
    await saveCheckpoint(target, { weights: {} }, {});
    expect(readdirSync(dir).filter((n) => n.startsWith('.big.bin.tmp-'))).toEqual([]);
  }, 60_000);

  it('metrics.jsonl: appends, skips a torn last line, truncates after a checkpoint step', () => {
    const path = join(dir, 'metrics.jsonl');
    for (let s = 1; s <= 5; s++) appendMetrics(path, { step: s, stage: 'teacher', loss: 1 / s });
    writeFileSync(path, `${readFileSync(path, 'utf8')}{"step": 6, "lo`);
    expect(readMetrics(path).map((r) => r.step)).toEqual([1, 2, 3, 4, 5]);
    expect(truncateMetrics(path, (r) => r.step <= 3)).toBe(2);
    expect(readFileSync(path, 'utf8')).toBe(
      [
        '{"step":1,"stage":"teacher","loss":1}',
        '{"step":2,"stage":"teacher","loss":0.5}',
        `{"step":3,"stage":"teacher","loss":${1 / 3}}`,
        '',
      ].join('\n'),
    );
    expect(existsSync(join(dir, 'nope.jsonl'))).toBe(false);
    expect(truncateMetrics(join(dir, 'nope.jsonl'), () => false)).toBe(0);
  });

  it('a missing or corrupt checkpoint is one InputError naming the file', () => {
    expect(() => loadCheckpoint(join(dir, 'absent.safetensors'))).toThrow(/absent.safetensors does not exist/);
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, new Uint8Array([200, 0, 0, 0, 0, 0, 0, 0, 1, 2]));
    expect(() => loadCheckpoint(bad)).toThrow(
      /bad.safetensors is not a model or checkpoint file \(Invalid safetensors file: the header claims 200 bytes/,
    );
    atomicWriteFile(bad, new Uint8Array([1, 2, 3]));
    expect(readFileSync(bad).length).toBe(3);
  });
});
