import { InputError, initBackend } from '@t2md/core';
import { randomArray, withNoLeaks } from '@t2md/core/testing';
import { createDiT, type DiT, tinyTeacher } from '@t2md/dit';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaptionEncoder, createCaptionEncoder } from '../models/text-encoder.js';
import { MAX_TOKENS, VOCAB_SIZE } from '../world/index.js';
import { generate } from './generate.js';

describe('generate with a list of prompts', () => {
  let model: DiT;
  let encoder: CaptionEncoder;

  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    model = createDiT({ ...tinyTeacher, captionChannels: 32, captionLength: MAX_TOKENS, seed: 3 });
    // A fresh DiT predicts zeros whatever the caption: move every weight off its init so captions matter.
    Object.values(model.weights()).forEach((w, i) => {
      w.assign(tf.add(w, tf.tensor(randomArray(w.size, 100 + i, -0.05, 0.05), w.shape)));
    });
    encoder = createCaptionEncoder({ vocabSize: VOCAB_SIZE, maxLength: MAX_TOKENS, dim: 32, layers: 1 });
  });
  afterAll(() => {
    model?.dispose();
    encoder?.dispose();
  });

  const run = (prompt: string | string[], count?: number) =>
    generate({ model, encoder, prediction: 'epsilon', prompt, count, steps: 2, cfg: 2, seed: 7, sampler: 'ddim' });

  it('draws one image per prompt, each row following its own caption', async () => {
    // the first call fills the model's per-grid caches (positional embedding): not a leak
    tf.dispose((await run('a red circle')).images);
    const rows = await withNoLeaks(async () => {
      const a = await run(['a red circle', 'two blue squares', 'a green triangle']);
      const b = await run(['a red circle', 'a red circle', 'a green triangle']);
      const out = [await a.images.data(), await b.images.data(), a.images.shape];
      tf.dispose([a.images, b.images]);
      return out;
    });
    const [x, y, shape] = rows as [Float32Array, Float32Array, number[]];
    expect(shape).toEqual([3, 3, 16, 16]);
    const per = x.length / 3;
    const row = (v: Float32Array, i: number) => Array.from(v.subarray(i * per, (i + 1) * per));
    expect(x.every(Number.isFinite)).toBe(true);
    // same noise and same caption → same image; another caption in row 1 → another image
    expect(row(x, 0)).toEqual(row(y, 0));
    expect(row(x, 2)).toEqual(row(y, 2));
    expect(row(x, 1)).not.toEqual(row(y, 1));
  });

  it('refuses a count that disagrees with the list and an empty list', async () => {
    await expect(run(['a red circle', 'a blue square'], 3)).rejects.toThrow(InputError);
    await expect(run(['a red circle', 'a blue square'], 3)).rejects.toThrow(/count \(3\) must be left out/);
    await expect(run([])).rejects.toThrow(/1 to 256 prompts/);
  });
});
