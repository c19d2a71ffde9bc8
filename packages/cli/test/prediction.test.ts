/**
 * `t2md train --prediction v`: the flag's refusal, and a tiny v teacher end to end (built CLI, cpu):
 * its model file says v, and the CLI's sampling helper samples it as v.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@t2md/core';
import { generate } from '@t2md/shapes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drawImages } from '../src/commands/sample.js';
import { loadModel } from '../src/models.js';
import { expectOneLine, t2md } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-prediction-'));
const env = { T2MD_BACKEND: 'cpu' };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A safetensors file's metadata, from its header. */
function metadata(path: string): Record<string, string> {
  const b = readFileSync(path);
  return JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString()).__metadata__;
}

describe('t2md train --prediction', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('refuses an unknown type with one sentence and exit 2', () => {
    expectOneLine(t2md(['train', '--out', join(dir, 'bad'), '--prediction', 'x'], env), /--prediction must be one of epsilon, v, got 'x'/);
  });

  it('a tiny v teacher records v, and the CLI samples it as v (not as epsilon)', async () => {
    const out = join(dir, 'v');
    const r = t2md(['train', '--out', out, '--preset', 'tiny', '--steps', '2', '--prediction', 'v'], env);
    expect(r.code, r.stderr).toBe(0);
    const file = join(out, 'model.safetensors');
    const meta = metadata(file);
    expect(meta['t2md.prediction']).toBe('v');
    expect(JSON.parse(meta['t2md.preset']!).stages.teacher.prediction).toBe('v');
    expect(JSON.parse(meta['t2md.train']!).commands[0]).toMatch(/--prediction v$/);

    const trained = loadModel(out);
    try {
      expect(trained.prediction).toBe('v');
      const o = { prompt: 'a red circle', count: 1, steps: 3, sampler: 'ddim', cfg: 1, seed: 3 } as const;
      const asFile = (await drawImages(trained, o, 'cpu')).images[0]!.data;
      const asEps = (await drawImages({ ...trained, prediction: 'epsilon' }, o, 'cpu')).images[0]!.data;
      // what the sampler gets told decides the image: the file's type, not the epsilon default
      const { images } = await generate({ ...trained, ...o, prediction: 'v' });
      const v = (await images.data()) as Float32Array;
      images.dispose();
      expect(asFile.length).toBe(v.length);
      let [same, differs] = [0, 0];
      for (let i = 0; i < v.length; i++) {
        same = Math.max(same, Math.abs(asFile[i]! - v[i]!));
        differs = Math.max(differs, Math.abs(asEps[i]! - v[i]!));
      }
      expect(same).toBe(0);
      expect(differs).toBeGreaterThan(1e-3);
    } finally {
      trained.dispose();
    }
  });
});
