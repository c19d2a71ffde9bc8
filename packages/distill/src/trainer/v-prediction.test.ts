/**
 * v-prediction (`StageConfig.prediction: 'v'`, `t2md train --prediction v`): the target and the
 * min-SNR-γ weights against float64 references, what the files record (teacher, init, resume, student),
 * and that the losses of the teacher and distill stages are taken against v, not ε.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, initBackend, Rng } from '@t2md/core';
import { freshSeed } from '@t2md/core/testing';
import { createDiT, transferFromTeacher } from '@t2md/dit';
import { alphasCumprod } from '@t2md/sampler';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { meanSquaredError, minSnrWeights } from '../losses/losses.js';
import { stageCfg } from './config.js';
import { loadTrainedModel, PREDICTION_KEY, readCheckpointHeader, readModelHeader } from './model-file.js';
import { distillStudent, trainTeacher } from './pipeline.js';
import { disposeNoised, noiseBatch, stageLoss } from './stage-step.js';
import { createEncoder, microPreset, syntheticData, VOCAB } from './test-fixtures.js';

const world = { data: syntheticData, createEncoder, vocabSize: VOCAB };
let root: string;

/** The `t2md.prediction` metadata of a model file (undefined when absent) and what it reads as. */
function predictionOf(path: string): { key: string | undefined; reads: string } {
  const m = loadTrainedModel(path, createEncoder);
  m.dispose();
  return { key: m.metadata[PREDICTION_KEY], reads: m.prediction };
}

describe('v-prediction (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    root = mkdtempSync(join(tmpdir(), 't2md-v-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('the v target is √ᾱ_t ε − √(1−ᾱ_t) x_0 (float64 reference); t, ε and x_t are those of epsilon; nothing leaks', async () => {
    const seed = freshSeed();
    const data = syntheticData({ seed, resolution: 8, batchSize: 5, maxTokens: 6 });
    const batch = await data.next();
    const ac = alphasCumprod();
    const before = tf.memory().numTensors;
    const [eps, v] = [
      noiseBatch(batch, new Rng(seed), ac, { captionDropout: 0.1, patchSize: 2, minSnrGamma: 5 }),
      noiseBatch(batch, new Rng(seed), ac, { captionDropout: 0.1, patchSize: 2, minSnrGamma: 5, prediction: 'v' }),
    ];
    expect(eps.target).toBe(eps.noise);
    expect(Array.from(await v.xt.data())).toEqual(Array.from(await eps.xt.data()));
    expect(Array.from(await v.noise.data())).toEqual(Array.from(await eps.noise.data()));
    const ts = Array.from(await v.t.data());
    const [x0, e, got] = [await batch.images.data(), await v.noise.data(), await v.target.data()];
    const per = x0.length / ts.length;
    let worst = 0;
    for (let i = 0; i < x0.length; i++) {
      const ab = ac[ts[Math.floor(i / per)]!]!;
      worst = Math.max(worst, Math.abs(got[i]! - (Math.sqrt(ab) * e[i]! - Math.sqrt(1 - ab) * x0[i]!)));
    }
    expect(worst).toBeLessThan(1e-6);
    // x_t = α x_0 + σ ε and v recover x_0 = α x_t − σ v (the sampler's conversion)
    const xt = await v.xt.data();
    for (let i = 0; i < x0.length; i += 7) {
      const ab = ac[ts[Math.floor(i / per)]!]!;
      expect(Math.sqrt(ab) * xt[i]! - Math.sqrt(1 - ab) * got[i]!).toBeCloseTo(x0[i]!, 5);
    }
    expect(Array.from(await v.weight!.data())).toEqual(Array.from(minSnrWeights(ts, ac, 5, 'v')));
    disposeNoised(eps);
    disposeNoised(v);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([batch.images, batch.tokens, batch.mask]);
  });

  it('min-SNR-γ weights: min(SNR, γ)/(SNR + 1) for v and min(SNR, γ)/SNR for epsilon (float64 reference, random t and γ)', () => {
    const rng = new Rng(freshSeed());
    const ac = alphasCumprod();
    const ts = Array.from({ length: 64 }, () => rng.int(ac.length));
    const gamma = 0.5 + rng.next() * 10;
    const [wv, we] = [minSnrWeights(ts, ac, gamma, 'v'), minSnrWeights(ts, ac, gamma)];
    for (const [i, t] of ts.entries()) {
      const snr = ac[t]! / (1 - ac[t]!);
      expect(Math.abs(wv[i]! - Math.min(snr, gamma) / (snr + 1)), `t=${t}`).toBeLessThan(1e-6);
      expect(Math.abs(we[i]! - Math.min(snr, gamma) / snr) / (Math.min(snr, gamma) / snr), `t=${t}`).toBeLessThan(1e-6);
    }
    // the x_0-space weight, w·(SNR + 1) for v and w·SNR for epsilon, is min(SNR, γ) in both
    expect(minSnrWeights([999], ac, gamma, 'v')[0]).toBeCloseTo(ac[999]! / (1 - ac[999]!) / (ac[999]! / (1 - ac[999]!) + 1), 6);
  });

  it("the teacher and distill stages' L_mse is against v, L_pseudo against the teacher's v output", async () => {
    const seed = freshSeed();
    const data = syntheticData({ seed, resolution: 8, batchSize: 2, maxTokens: 6 });
    const batch = await data.next();
    const nb = noiseBatch(batch, new Rng(seed), alphasCumprod(), { captionDropout: 0, patchSize: 2, prediction: 'v' });
    const teacher = createDiT(microPreset.teacher);
    const student = createDiT(microPreset.student);
    transferFromTeacher(student, teacher);
    const encoder = createEncoder({ vocabSize: VOCAB, maxLength: 6, ...microPreset.textEncoder, seed: 1 });
    // a first forward may cache per-grid constants (positional embeddings): warm both models up first
    tf.tidy(() => {
      const y = encoder.encode(nb.tokens, nb.mask);
      for (const m of [teacher, student]) m.forward(nb.xt, nb.t, y, { yMask: nb.mask, dropCaption: nb.drop });
    });
    const before = tf.memory().numTensors;
    for (const stage of ['teacher', 'distill'] as const) {
      const model = stage === 'teacher' ? teacher : student;
      const cfg = stageCfg(microPreset, stage, undefined, undefined);
      const sl = stageLoss(stage, cfg, { model, encoder, teacher }, nb);
      // as tf.variableGrads runs it: intermediates freed, the parts kept (the teacher stage's loss is its mse part)
      const loss = tf.tidy(() => sl.loss());
      const parts = sl.parts();
      const [out, tOut] = tf.tidy(() => {
        const y = encoder.encode(nb.tokens, nb.mask);
        const o = { yMask: nb.mask, dropCaption: nb.drop };
        return [model.forward(nb.xt, nb.t, y, o), teacher.forward(nb.xt, nb.t, y, o)];
      });
      const [toV, toEps] = [meanSquaredError(nb.target, out), meanSquaredError(nb.noise, out)];
      const mse = (await parts.mse!.data())[0]!;
      expect(mse).toBeCloseTo((await toV.data())[0]!, 5);
      expect(Math.abs(mse - (await toEps.data())[0]!)).toBeGreaterThan(1e-3);
      if (stage === 'distill') {
        const pseudo = meanSquaredError(tOut, out);
        expect((await parts.pseudo!.data())[0]).toBeCloseTo((await pseudo.data())[0]!, 5);
        pseudo.dispose();
      }
      sl.dispose();
      tf.dispose([loss, ...Object.values(parts), out, tOut, toV, toEps]);
    }
    expect(tf.memory().numTensors).toBe(before);
    disposeNoised(nb);
    tf.dispose([batch.images, batch.tokens, batch.mask]);
    for (const x of [teacher, student, encoder]) x.dispose();
  });

  it('a v teacher records v in its files; init keeps the file’s type unless asked; a resume keeps it; the student inherits it', async () => {
    const [epsDir, vDir] = [join(root, 'eps'), join(root, 'v')];
    await trainTeacher({ ...world, preset: microPreset, out: epsDir, steps: 2 });
    await trainTeacher({ ...world, preset: microPreset, out: vDir, steps: 2, overrides: { teacher: { prediction: 'v' } } });
    const [epsFile, vFile] = [join(epsDir, 'model.safetensors'), join(vDir, 'model.safetensors')];
    expect(predictionOf(epsFile)).toEqual({ key: undefined, reads: 'epsilon' }); // epsilon files are as before
    expect(predictionOf(vFile)).toEqual({ key: 'v', reads: 'v' });
    expect(predictionOf(join(vDir, 'teacher.safetensors')).reads).toBe('v');
    expect(readModelHeader(vFile).prediction).toBe('v');
    expect(readCheckpointHeader(join(vDir, 'latest.safetensors')).prediction).toBe('v');
    expect(readModelHeader(vFile).preset?.stages.teacher.prediction).toBe('v');

    // --init: the fine-tune from the epsilon file trains and records v; without --prediction the file's type
    const cases = [
      { init: epsFile, overrides: { teacher: { prediction: 'v' as const } }, want: 'v' },
      { init: vFile, overrides: undefined, want: 'v' },
      { init: epsFile, overrides: undefined, want: 'epsilon' },
    ];
    for (const [i, c] of cases.entries()) {
      const out = join(root, `init-${i}`);
      await trainTeacher({ ...world, init: c.init, out, steps: 1, ...(c.overrides ? { overrides: c.overrides } : {}) });
      expect(predictionOf(join(out, 'model.safetensors')).reads, `case ${i}`).toBe(c.want);
    }
    // a resume keeps it: the same type passes, another is one sentence
    await trainTeacher({ ...world, out: vDir, steps: 3, resume: true, overrides: { teacher: { prediction: 'v' } } });
    await trainTeacher({ ...world, out: epsDir, steps: 3, resume: true, overrides: { teacher: { prediction: 'epsilon' } } });
    await expect(
      trainTeacher({ ...world, out: vDir, steps: 4, resume: true, overrides: { teacher: { prediction: 'epsilon' } } }),
    ).rejects.toThrow(/was made with stage 'teacher' prediction "v", not "epsilon"/);

    // distillation: the student inherits v (every stage), and cannot be told otherwise
    const short = { forcing: { steps: 1 }, distill: { steps: 1 }, adapt: { steps: 1 }, finetune: { steps: 1 } };
    const sDir = join(root, 'student');
    await distillStudent({ ...world, teacher: vFile, out: sDir, overrides: short });
    for (const f of ['forcing', 'distill', 'adapt', 'finetune', 'model']) {
      expect(predictionOf(join(sDir, `${f}.safetensors`)), f).toEqual({ key: 'v', reads: 'v' });
    }
    await expect(
      distillStudent({ ...world, teacher: vFile, out: join(root, 'bad'), overrides: { distill: { prediction: 'v' } } }),
    ).rejects.toThrow(
      new InputError(
        "stage 'distill' prediction cannot be set: a student predicts what its teacher file records; train the teacher with it instead.",
      ),
    );
    // a v student continued under an epsilon teacher is refused
    await expect(
      distillStudent({ ...world, teacher: epsFile, init: join(sDir, 'model.safetensors'), out: join(root, 'mixed'), stage: 'finetune' }),
    ).rejects.toThrow(/holds a v-predicting student, but the teacher .* predicts epsilon; distil from its own teacher\./);
  });
});
