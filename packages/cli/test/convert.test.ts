/**
 * `t2md convert`: the same weights in a new model file with another positional embedding or float
 * type, its command appended to the file's record; and `--pos-embed` on eval, which reports the
 * embedding it sampled with. Runs the built CLI.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, loadSafetensors } from '@t2md/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shippedModelPath } from '../src/models.js';
import { expectOneLine, t2md } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-convert-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

/** A safetensors file's header (tensor entries and `__metadata__`) and its data section. */
function parts(path: string) {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString()) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  > & {
    __metadata__: Record<string, string>;
  };
  const { __metadata__: metadata, ...tensors } = header;
  return { metadata, tensors, data: b.subarray(8 + n) };
}

describe('t2md convert', () => {
  const teacher = shippedModelPath('teacher')!;
  const other = join(dir, 'other.safetensors');

  it('writes the same tensor bytes with the new positional embedding, and records its command', () => {
    // the shipped teacher is 'interpolated' (itself converted from 'sincos'): back to 'sincos'
    const r = t2md(['convert', 'teacher', '--pos-embed', 'sincos', '--out', other]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*other\.safetensors \([\d.]+ MiB, F16, positional embedding sincos\) from /);
    const a = parts(teacher);
    const b = parts(other);
    expect(Object.keys(b.tensors).sort()).toEqual(Object.keys(a.tensors).sort());
    for (const [name, t] of Object.entries(a.tensors)) {
      const u = b.tensors[name]!;
      expect([u.dtype, u.shape]).toEqual([t.dtype, t.shape]);
      expect(Buffer.compare(b.data.subarray(...u.data_offsets), a.data.subarray(...t.data_offsets)), name).toBe(0);
    }
    const config = JSON.parse(b.metadata['t2md.config']!);
    expect(config).toEqual({ ...JSON.parse(a.metadata['t2md.config']!), posEmbed: 'sincos' });
    const [was, now] = [a, b].map((p) => JSON.parse(p.metadata['t2md.train']!) as { commands: string[] });
    expect(now!.commands).toEqual([...was!.commands, `t2md convert teacher --pos-embed sincos --out ${other}`]);
    for (const key of ['t2md.preset', 't2md.text_encoder']) expect(b.metadata[key]).toBe(a.metadata[key]);
  });

  it('--model-dtype f32 widens the weights exactly (f16 values are f32 values)', () => {
    const wide = join(dir, 'wide.safetensors');
    const r = t2md(['convert', other, '--model-dtype', 'f32', '--out', wide]);
    expect(r.code, r.stderr).toBe(0);
    const b = parts(wide);
    expect(new Set(Object.values(b.tensors).map((t) => t.dtype))).toEqual(new Set(['F32']));
    expect(JSON.parse(b.metadata['t2md.config']!).posEmbed).toBe('sincos'); // kept: no --pos-embed given
    const [x, y] = [other, wide].map((p) => loadSafetensors(readFileSync(p)).tensors);
    for (const [name, t] of Object.entries(x!)) expect(Array.from(y![name]!.dataSync()), name).toEqual(Array.from(t.dataSync()));
    for (const t of [...Object.values(x!), ...Object.values(y!)]) t.dispose();
  });

  it.each([
    [['convert', 'teacher', '--out', join(dir, 'x.safetensors')], /t2md convert needs something to change: pass --pos-embed/],
    [
      ['convert', 'teacher', '--pos-embed', 'rope', '--out', join(dir, 'x.safetensors')],
      /--pos-embed must be one of sincos, centered, interpolated/,
    ],
    [['convert', 'teacher', '--pos-embed', 'sincos', '--out', join(dir, 'x.png')], /--out must name a \.safetensors file/],
    [
      ['convert', join(dir, 'none.safetensors'), '--pos-embed', 'sincos', '--out', join(dir, 'x.safetensors')],
      /is neither teacher, student nor an existing file/,
    ],
  ] as [string[], RegExp][])('refuses %j with exit 2 and one sentence', (args, pattern) => {
    expectOneLine(t2md(args), pattern);
  });
});

describe('t2md eval --pos-embed', () => {
  it("samples with the given embedding instead of the file's, and reports it", () => {
    const r = t2md(
      ['eval', '--model', 'teacher', '--pos-embed', 'centered', '--prompts', '6', '--steps', '1', '--batch', '6', '--size', '16', '--json'],
      {
        T2MD_BACKEND: 'cpu',
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.settings).toMatchObject({ posEmbed: 'centered', size: 16, backend: 'cpu' });
  });
});
