import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, initBackend, Rng } from '@t2md/core';
import { freshSeed, randomArray, withNoLeaks } from '@t2md/core/testing';
import { alphasCumprod } from '@t2md/sampler';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../checkpoint/metrics.js';
import { denoiseLoss, minSnrWeights, weightedDenoiseLoss } from '../losses/losses.js';
import { trainTeacher } from './pipeline.js';
import { disposeNoised, noiseBatch } from './stage-step.js';
import { createEncoder, microPreset, syntheticData, VOCAB } from './test-fixtures.js';

let root: string;

describe('min-SNR-γ weighting (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    root = mkdtempSync(join(tmpdir(), 't2md-minsnr-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('weights min(SNR, γ)/SNR per sample: 1 where SNR ≤ γ, γ/SNR above', () => {
    const ac = alphasCumprod();
    const ts = [0, 10, 100, 300, 999];
    const w = minSnrWeights(ts, ac, 5);
    for (const [i, t] of ts.entries()) {
      const snr = ac[t]! / (1 - ac[t]!);
      expect(w[i]).toBeCloseTo(snr > 5 ? 5 / snr : 1, 6);
    }
    expect(w[0]).toBeLessThan(1e-3); // t = 0: SNR ≈ 1e4
    expect(w[4]).toBe(1);
    expect(() => minSnrWeights(ts, ac, 0)).toThrow(InputError);
  });

  it('the weighted loss is mean_n w_n·mse_n, equals the plain loss at w = 1, and leaks nothing', async () => {
    const seed = freshSeed();
    const [N, C, H, W] = [3, 2, 4, 4];
    const eps = tf.tensor(randomArray(N * C * H * W, seed), [N, C, H, W]);
    const hat = tf.tensor(randomArray(N * C * H * W, seed + 1), [N, C, H, W]);
    const w = [0.2, 1, 0.5];
    await withNoLeaks(async () => {
      const wt = tf.tensor1d(w);
      const got = weightedDenoiseLoss(eps, hat, wt);
      const e = (await eps.data()) as Float32Array;
      const h = (await hat.data()) as Float32Array;
      let want = 0;
      const per = C * H * W;
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let i = 0; i < per; i++) s += (e[n * per + i]! - h[n * per + i]!) ** 2;
        want += (w[n]! * s) / per / N;
      }
      expect((await got.data())[0]).toBeCloseTo(want, 5);
      const ones = tf.ones([N]);
      const [a, b] = [weightedDenoiseLoss(eps, hat, ones), denoiseLoss(eps, hat)];
      expect((await a.data())[0]).toBeCloseTo((await b.data())[0]!, 6);
      tf.dispose([wt, got, ones, a, b]);
    });
    tf.dispose([eps, hat]);
  });

  it('noiseBatch draws the same t, noise and xt with it (the RNG stream is unchanged) and adds the weights', async () => {
    const data = syntheticData({ seed: 5, resolution: 8, batchSize: 4, maxTokens: 6 });
    const batch = await data.next();
    const ac = alphasCumprod();
    const [plain, weighted] = [
      noiseBatch(batch, new Rng(9), ac, { captionDropout: 0.1, patchSize: 2 }),
      noiseBatch(batch, new Rng(9), ac, { captionDropout: 0.1, patchSize: 2, minSnrGamma: 5 }),
    ];
    expect(plain.weight).toBeUndefined();
    expect(Array.from(await weighted.xt.data())).toEqual(Array.from(await plain.xt.data()));
    const ts = Array.from(await weighted.t.data());
    expect(Array.from(await weighted.weight!.data())).toEqual(Array.from(minSnrWeights(ts, ac, 5)));
    disposeNoised(plain);
    disposeNoised(weighted);
    tf.dispose([batch.images, batch.tokens, batch.mask]);
  });

  it('a teacher run with minSnrGamma trains (finite, falling weighted loss) and refuses a bad γ', async () => {
    const common = { preset: microPreset, data: syntheticData, createEncoder, vocabSize: VOCAB };
    await trainTeacher({ ...common, out: join(root, 'run'), overrides: { teacher: { steps: 12, lr: 3e-3, minSnrGamma: 5 } } });
    const loss = readMetrics(join(root, 'run', 'metrics.jsonl')).map((r) => r.loss!);
    expect(loss.every(Number.isFinite)).toBe(true);
    expect(loss.slice(-3).reduce((a, b) => a + b) / 3).toBeLessThan(loss.slice(0, 3).reduce((a, b) => a + b) / 3);
    await expect(trainTeacher({ ...common, out: join(root, 'bad'), overrides: { teacher: { minSnrGamma: -1 } } })).rejects.toThrow(
      /minSnrGamma/,
    );
  });
});
