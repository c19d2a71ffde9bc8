import { InputError, initBackend } from '@t2md/core';
import { withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Batch, createDataset, datasetItem } from './dataset.js';
import { renderScene } from './render.js';
import { tokenize } from './tokenizer.js';

async function read(b: Batch) {
  const out = { images: await b.images.data(), tokens: await b.tokens.data(), mask: await b.mask.data(), captions: b.captions };
  tf.dispose([b.images, b.tokens, b.mask]);
  return out;
}

describe('dataset', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('yields images, tokens, masks and captions of the right shapes and types, without leaking', async () => {
    await withNoLeaks(async () => {
      const ds = createDataset({ seed: 1, resolution: 32, batchSize: 4 });
      const b = ds.next();
      expect(b.images.shape).toEqual([4, 3, 32, 32]);
      expect(b.images.dtype).toBe('float32');
      expect(b.tokens.shape).toEqual([4, 16]);
      expect(b.tokens.dtype).toBe('int32');
      expect(b.mask.dtype).toBe('bool');
      const { images, tokens, captions } = await read(b);
      expect(captions.length).toBe(4);
      expect(Array.from(images.subarray(0, 3 * 32 * 32))).toEqual(Array.from(renderScene(b.scenes[0], 32)));
      expect(Array.from(tokens.subarray(16, 32))).toEqual(Array.from(tokenize(captions[1]).ids));
      expect(images.every((v) => v >= -1 && v <= 1)).toBe(true);
    });
  });

  it('is deterministic per seed, differs across seeds, and does not depend on the batch size', async () => {
    const a = createDataset({ seed: 42, resolution: 16, batchSize: 3 });
    const b = createDataset({ seed: 42, resolution: 16, batchSize: 3 });
    const c = createDataset({ seed: 43, resolution: 16, batchSize: 3 });
    const six = createDataset({ seed: 42, resolution: 16, batchSize: 6 });
    const [a1, a2] = [await read(a.next()), await read(a.next())];
    const [b1, b2] = [await read(b.next()), await read(b.next())];
    expect(b1).toEqual(a1);
    expect(b2).toEqual(a2);
    expect((await read(c.next())).captions).not.toEqual(a1.captions);
    expect((await read(six.next())).captions).toEqual([...a1.captions, ...a2.captions]);
  });

  it('resumes exactly from a saved (JSON) state', async () => {
    const run = createDataset({ seed: 7, resolution: 16, batchSize: 2, categories: ['counting', 'position'] });
    await read(run.next());
    await read(run.next());
    const saved = JSON.parse(JSON.stringify(run.state));
    expect(saved).toEqual({ seed: 7, index: 4 });
    const rest = [await read(run.next()), await read(run.next())];
    const resumed = createDataset({ seed: 7, resolution: 16, batchSize: 2, categories: ['counting', 'position'], state: saved });
    expect([await read(resumed.next()), await read(resumed.next())]).toEqual(rest);
    run.restore(saved);
    expect((await read(run.next())).captions).toEqual(rest[0].captions);
    for (const s of [...rest[0].captions, ...rest[1].captions]) expect(s).toMatch(/ (left of|right of|above|below) |^(two|three|four) /);
  });

  it('draws only the requested categories and can change resolution per batch', async () => {
    const ds = createDataset({ seed: 3, resolution: 32, batchSize: 8, categories: ['colors'] });
    const b = ds.next({ resolution: 48 });
    expect(b.images.shape).toEqual([8, 3, 48, 48]);
    expect(b.scenes.every((s) => s.category === 'colors')).toBe(true);
    await read(b);
    expect(datasetItem(3, 0, ['colors'])).toEqual(b.scenes[0]);
  });

  it('draws categories by the weights of mix, and equal weights leave the stream as it was', () => {
    const n = 1200;
    const counts = (mix?: Record<string, number>) => {
      const ds = createDataset({ seed: 5, resolution: 16, batchSize: n, ...(mix ? { mix } : {}) });
      const out: Record<string, number> = {};
      for (const s of ds.nextScenes()) out[s.category] = (out[s.category] ?? 0) + 1;
      return out;
    };
    // position 3, counting 2, the four others 1: expected shares 3/9, 2/9 and 1/9 each
    const mixed = counts({ position: 3, counting: 2 });
    const sd = (p: number) => Math.sqrt(n * p * (1 - p));
    expect(Math.abs(mixed.position - n / 3)).toBeLessThan(6 * sd(1 / 3));
    expect(Math.abs(mixed.counting - (2 * n) / 9)).toBeLessThan(6 * sd(2 / 9));
    expect(Math.abs(mixed.colors - n / 9)).toBeLessThan(6 * sd(1 / 9));
    // a weight of 0 leaves a category out entirely
    expect(counts({ colors: 0 }).colors).toBeUndefined();
    const plain = createDataset({ seed: 5, resolution: 16, batchSize: 12 }).nextScenes();
    expect(
      createDataset({
        seed: 5,
        resolution: 16,
        batchSize: 12,
        mix: { position: 2, colors: 2, counting: 2, singleObject: 2, twoObjects: 2, colorAttribution: 2 },
      }).nextScenes(),
    ).toEqual(plain);
    expect(createDataset({ seed: 5, resolution: 16, batchSize: 2, mix: { position: 2 } }).mix).toEqual({ position: 2 });
  });

  it('rejects bad options with an InputError naming them', () => {
    expect(() => createDataset({ seed: -1, resolution: 32, batchSize: 2 })).toThrow(/seed must be an integer/);
    expect(() => createDataset({ seed: 1, resolution: 4, batchSize: 2 })).toThrow(/resolution must be an integer in \[8, 4096\]/);
    expect(() => createDataset({ seed: 1, resolution: 32, batchSize: 0 })).toThrow(/batchSize must be an integer/);
    expect(() => createDataset({ seed: 1, resolution: 32, batchSize: 2, categories: ['shapes' as never] })).toThrow(InputError);
    expect(() => createDataset({ seed: 1, resolution: 32, batchSize: 2, mix: { shapes: 2 } as never })).toThrow(
      /mix names "shapes", which is not one of the categories drawn/,
    );
    for (const mix of [5, [2], true]) {
      expect(() => createDataset({ seed: 1, resolution: 32, batchSize: 2, mix: mix as never })).toThrow(
        /mix must be an object of category weights/,
      );
    }
    expect(() => createDataset({ seed: 1, resolution: 32, batchSize: 2, mix: { position: 1.5 } })).toThrow(
      /mix.position must be an integer in \[0, 100\]/,
    );
    expect(() => createDataset({ seed: 1, resolution: 32, batchSize: 2, categories: ['position'], mix: { position: 0 } })).toThrow(
      /every category weight 0/,
    );
    expect(() => createDataset({ seed: 1, resolution: 32, batchSize: 2, state: { seed: 2, index: 0 } })).toThrow(
      /state has seed 2 but the dataset was created with seed 1/,
    );
  });
});
