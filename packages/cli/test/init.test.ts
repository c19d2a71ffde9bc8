/**
 * `--init` (a new run from a model file's weights: how a committed model is trained on in a later
 * session) and `--model-dtype f16` (the model files that ship), through the built CLI.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectOneLine, t2md } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-init-'));
const env = { T2MD_BACKEND: 'wasm' };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The header of a safetensors file: its tensors' dtypes and its metadata. */
function header(path: string): { dtypes: Set<string>; metadata: Record<string, string> } {
  const b = readFileSync(path);
  const h = JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString()) as Record<string, { dtype: string }>;
  const { __metadata__, ...tensors } = h;
  return { dtypes: new Set(Object.values(tensors).map((t) => t.dtype)), metadata: __metadata__ as unknown as Record<string, string> };
}

describe('t2md train|distill --init and --model-dtype (tiny preset, wasm)', () => {
  const first = join(dir, 'first');
  const model = join(first, 'model.safetensors');

  it('trains on from a model file into an f16 model file that samples, recording where it started', () => {
    expect(t2md(['train', '--out', first, '--preset', 'tiny', '--steps', '2'], env).code).toBe(0);
    const next = join(dir, 'next');
    const r = t2md(['train', '--init', model, '--out', next, '--steps', '1', '--model-dtype', 'f16'], env);
    expect(r.code, r.stderr).toBe(0);
    const h = header(join(next, 'model.safetensors'));
    expect(h.dtypes).toEqual(new Set(['F16']));
    const train = JSON.parse(h.metadata['t2md.train']!) as { init: unknown; commands: string[] };
    expect(train.init).toEqual({ file: model, stage: 'teacher', step: 2 });
    expect(train.commands).toHaveLength(2);
    expect(train.commands[1]).toMatch(/^t2md train --init .* --model-dtype f16$/);
    expect(JSON.parse(h.metadata['t2md.preset']!).name).toBe('tiny'); // the file's preset
    const png = join(dir, 'next.png');
    const s = t2md(['sample', 'a red circle', '--model', join(next, 'model.safetensors'), '--steps', '2', '--out', png], env);
    expect(s.code, s.stderr).toBe(0);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
  });

  it('exits 2 with one line that names the flags to change', () => {
    expectOneLine(t2md(['train', '--init', model, '--out', join(dir, 'r'), '--resume'], env), /\(drop --init or --resume\)\.$/);
    expectOneLine(
      t2md(['train', '--init', model, '--out', first], env),
      /already holds a checkpoint, and init starts a new run.*\(pass another --out, or drop --init and pass --resume\)\.$/,
    );
    expectOneLine(t2md(['train', '--init', model, '--out', join(dir, 'd'), '--model-dtype', 'f8'], env), /--model-dtype/);
    expectOneLine(
      t2md(['train', '--init', join(dir, 'missing.safetensors'), '--out', join(dir, 'm')], env),
      /missing\.safetensors does not exist/,
    );
    expectOneLine(
      t2md(['distill', '--teacher', model, '--init', model, '--out', join(dir, 's'), '--stage', 'distill'], env),
      /has layout .* but preset 'tiny''s student has/,
    );
  });
});
