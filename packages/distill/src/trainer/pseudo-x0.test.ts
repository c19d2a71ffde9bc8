/**
 * L_pseudo's high-noise weighting (`StageConfig.pseudoX0Cap`, `t2md distill --pseudo-x0`): the weights
 * against a float64 reference, the weighted L_pseudo the distill stage takes, and a v teacher's refusal.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, initBackend, Rng } from '@t2md/core';
import { freshSeed } from '@t2md/core/testing';
import { createDiT } from '@t2md/dit';
import { alphasCumprod } from '@t2md/sampler';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../checkpoint/metrics.js';
import { highNoiseWeights, pseudoLoss, weightedDenoiseLoss } from '../losses/losses.js';
import { stageCfg } from './config.js';
import { distillStudent, trainTeacher } from './pipeline.js';
import { disposeNoised, noiseBatch, stageLoss } from './stage-step.js';
import { createEncoder, microPreset, syntheticData, VOCAB } from './test-fixtures.js';

const world = { data: syntheticData, createEncoder, vocabSize: VOCAB };
let root: string;

describe('high-noise weighting of L_pseudo (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    root = mkdtempSync(join(tmpdir(), 't2md-px0-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('weights clamp(1/SNR_t, 1, Γ) / its mean over t (float64 reference, random t and Γ); Γ = 1 gives ones', () => {
    const rng = new Rng(freshSeed());
    const ac = alphasCumprod();
    const cap = 2 + rng.next() * 2000;
    const clamp = (t: number) => Math.min(Math.max((1 - ac[t]!) / ac[t]!, 1), cap);
    let mean = 0;
    for (let t = 0; t < ac.length; t++) mean += clamp(t);
    mean /= ac.length;
    const ts = Array.from({ length: 64 }, () => rng.int(ac.length));
    const w = highNoiseWeights(ts, ac, cap);
    for (const [i, t] of ts.entries()) expect(Math.abs(w[i]! - clamp(t) / mean) / (clamp(t) / mean), `t=${t}`).toBeLessThan(1e-6);
    // the weights average 1 over the schedule, and high noise counts more than low noise
    const all = highNoiseWeights(
      Array.from({ length: ac.length }, (_, t) => t),
      ac,
      cap,
    );
    expect(all.reduce((a, b) => a + b, 0) / ac.length).toBeCloseTo(1, 5);
    expect(all[ac.length - 1]!).toBeGreaterThan(all[0]!);
    expect(Array.from(highNoiseWeights(ts, ac, 1))).toEqual(ts.map(() => 1));
    expect(() => highNoiseWeights(ts, ac, 0.5)).toThrow(InputError);
  });

  it("noiseBatch keeps its RNG stream and adds the weights; the distill stage's L_pseudo takes them", async () => {
    const seed = freshSeed();
    const data = syntheticData({ seed, resolution: 8, batchSize: 3, maxTokens: 6 });
    const batch = await data.next();
    const ac = alphasCumprod();
    const [plain, nb] = [
      noiseBatch(batch, new Rng(seed), ac, { captionDropout: 0, patchSize: 2 }),
      noiseBatch(batch, new Rng(seed), ac, { captionDropout: 0, patchSize: 2, pseudoX0Cap: 300 }),
    ];
    expect(plain.pseudoWeight).toBeUndefined();
    expect(Array.from(await nb.xt.data())).toEqual(Array.from(await plain.xt.data()));
    const ts = Array.from(await nb.t.data());
    expect(Array.from(await nb.pseudoWeight!.data())).toEqual(Array.from(highNoiseWeights(ts, ac, 300)));
    const teacher = createDiT(microPreset.teacher);
    const student = createDiT(microPreset.student);
    // DiT's zero-initialised output layers would make both outputs 0: random weights instead
    let k = seed;
    for (const m of [teacher, student])
      for (const v of Object.values(m.weights())) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.2, 'float32', k++)));
    const encoder = createEncoder({ vocabSize: VOCAB, maxLength: 6, ...microPreset.textEncoder, seed: 1 });
    tf.tidy(() => {
      const y = encoder.encode(nb.tokens, nb.mask);
      for (const m of [teacher, student]) m.forward(nb.xt, nb.t, y, { yMask: nb.mask, dropCaption: nb.drop });
    });
    const before = tf.memory().numTensors;
    const cfg = { ...stageCfg(microPreset, 'distill', undefined, undefined), pseudoX0Cap: 300 };
    const sl = stageLoss('distill', cfg, { model: student, encoder, teacher }, nb);
    const loss = tf.tidy(() => sl.loss());
    const parts = sl.parts();
    const [out, tOut] = tf.tidy(() => {
      const y = encoder.encode(nb.tokens, nb.mask);
      const o = { yMask: nb.mask, dropCaption: nb.drop };
      const C = microPreset.student.inChannels;
      const eps = (m: typeof student) => tf.slice(m.forward(nb.xt, nb.t, y, o), [0, 0, 0, 0], [-1, C, -1, -1]);
      return [eps(student), eps(teacher)];
    });
    const [want, unweighted] = [weightedDenoiseLoss(tOut, out, nb.pseudoWeight!), pseudoLoss(tOut, out)];
    const got = (await parts.pseudo!.data())[0]!;
    expect(got).toBeCloseTo((await want.data())[0]!, 5);
    expect(Math.abs(got - (await unweighted.data())[0]!)).toBeGreaterThan(1e-6);
    sl.dispose();
    tf.dispose([loss, ...Object.values(parts), out, tOut, want, unweighted]);
    expect(tf.memory().numTensors).toBe(before);
    for (const b of [plain, nb]) disposeNoised(b);
    tf.dispose([batch.images, batch.tokens, batch.mask]);
    for (const x of [teacher, student, encoder]) x.dispose();
  });

  it('a distill run with it trains (finite loss); a bad Γ and a v teacher are refused', async () => {
    const [tDir, vDir] = [join(root, 't'), join(root, 'v')];
    await trainTeacher({ ...world, preset: microPreset, out: tDir, steps: 2 });
    await trainTeacher({ ...world, preset: microPreset, out: vDir, steps: 2, overrides: { teacher: { prediction: 'v' } } });
    const out = join(root, 's');
    const distill = { steps: 4, pseudoX0Cap: 100 };
    await distillStudent({ ...world, teacher: join(tDir, 'model.safetensors'), out, stage: 'distill', overrides: { distill } });
    const loss = readMetrics(join(out, 'metrics.jsonl')).map((r) => r.loss!);
    expect(loss.length).toBeGreaterThan(0);
    expect(loss.every(Number.isFinite)).toBe(true);
    const bad = { ...world, teacher: join(tDir, 'model.safetensors'), out: join(root, 'bad'), stage: 'distill' as const };
    await expect(distillStudent({ ...bad, overrides: { distill: { pseudoX0Cap: 0.5 } } })).rejects.toThrow(
      /pseudoX0Cap must be a finite number >= 1/,
    );
    await expect(
      distillStudent({ ...bad, teacher: join(vDir, 'model.safetensors'), overrides: { distill: { pseudoX0Cap: 100 } } }),
    ).rejects.toThrow(/predicts v \(its L_pseudo already weights high noise\)/);
  });
});
