/**
 * Guidance pairs (`StageConfig.lambdaGuidance`, `t2md distill --lambda-guidance λ`): the paired batch
 * against the plain one (same draws, halves equal), L_guidance against a float64 reference, the stage
 * loss's new term, the refusals, and micro distill runs with λ = 0 (bit-identical to no setting) and λ > 0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, initBackend, Rng } from '@t2md/core';
import { freshSeed, randomArray, withNoLeaks } from '@t2md/core/testing';
import { createDiT } from '@t2md/dit';
import { alphasCumprod } from '@t2md/sampler';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeCheckpoint, loadCheckpoint } from '../checkpoint/checkpoint.js';
import { readMetrics } from '../checkpoint/metrics.js';
import { highNoiseWeights, minSnrWeights, pseudoLoss } from '../losses/losses.js';
import { checkStageConfig, type StageConfig, stageCfg } from './config.js';
import { continuedPreset } from './continued-preset.js';
import { guidanceLoss } from './guidance.js';
import { distillStudent, trainTeacher } from './pipeline.js';
import { disposeNoised, needsTeacher, noiseBatch, stageLoss } from './stage-step.js';
import { createTrainStep, disposeStepResult } from './step.js';
import { createEncoder, microPreset, perturb, syntheticData, VOCAB } from './test-fixtures.js';

const world = { data: syntheticData, createEncoder, vocabSize: VOCAB };
let root: string;
let teacherFile: string;

/** A tensor's values as a plain array. */
const values = async (t: tf.Tensor) => Array.from(await t.data());
/** Rows [from, from + n) of a `[B, ...]` tensor's values. */
const rows = (v: number[], t: tf.Tensor, from: number, n: number) => {
  const per = t.size / t.shape[0]!;
  return v.slice(from * per, (from + n) * per);
};

/** The `model.*` weights of a file, by name. */
async function weightsOf(path: string): Promise<Record<string, number[]>> {
  const ckpt = loadCheckpoint(path);
  const w: Record<string, number[]> = {};
  for (const [n, t] of Object.entries(ckpt.weights)) if (n.startsWith('model.')) w[n] = await values(t);
  disposeCheckpoint(ckpt);
  return w;
}

/** Random (not zero-initialised) micro teacher and student and the caption encoder. */
function models(seed: number) {
  const teacher = createDiT(microPreset.teacher);
  const student = createDiT(microPreset.student);
  perturb(teacher, seed);
  perturb(student, seed + 1);
  const encoder = createEncoder({ vocabSize: VOCAB, maxLength: microPreset.captionTokens, ...microPreset.textEncoder, seed: 1 });
  return {
    teacher,
    student,
    encoder,
    dispose: () => {
      for (const x of [teacher, student, encoder]) x.dispose();
    },
  };
}

describe('guidance pairs (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    root = mkdtempSync(join(tmpdir(), 't2md-guidance-'));
    await trainTeacher({ ...world, preset: microPreset, out: join(root, 't'), steps: 2 });
    teacherFile = join(root, 't', 'model.safetensors');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('a paired batch makes the same draws, repeats its first half without the caption, and weights the paired t', async () => {
    const seed = freshSeed();
    const data = syntheticData({ seed, resolution: 8, batchSize: 4, maxTokens: 6 });
    const batch = await data.next();
    const ac = alphasCumprod();
    const before = tf.memory().numTensors;
    const noising = { captionDropout: 0.5, patchSize: 2, minSnrGamma: 5, pseudoX0Cap: 300 };
    for (const prediction of ['epsilon', 'v'] as const) {
      const [rPlain, rPaired] = [new Rng(seed), new Rng(seed)];
      const plain = noiseBatch(batch, rPlain, ac, { ...noising, prediction });
      const nb = noiseBatch(batch, rPaired, ac, { ...noising, prediction, paired: true });
      // the RNG stream does not depend on the pairing
      expect(rPaired.state).toEqual(rPlain.state);
      const ts = await values(nb.t);
      expect(ts.slice(0, 2)).toEqual((await values(plain.t)).slice(0, 2));
      expect(ts.slice(2)).toEqual(ts.slice(0, 2));
      expect(await values(nb.drop)).toEqual([0, 0, 1, 1]);
      const halves = async (t: tf.Tensor, same: tf.Tensor) => {
        const [v, w] = [await values(t), await values(same)];
        expect(rows(v, t, 2, 2)).toEqual(rows(v, t, 0, 2)); // the second half is the first, bit for bit
        expect(rows(v, t, 0, 2)).toEqual(rows(w, same, 0, 2)); // and the first half is the plain batch's
      };
      for (const k of ['xt', 'noise', 'target', 'tokens', 'mask'] as const) await halves(nb[k], plain[k]);
      expect(Array.from(await nb.weight!.data())).toEqual(Array.from(minSnrWeights(ts, ac, 5, prediction)));
      expect(Array.from(await nb.pseudoWeight!.data())).toEqual(Array.from(highNoiseWeights(ts, ac, 300)));
      for (const b of [plain, nb]) disposeNoised(b);
    }
    expect(tf.memory().numTensors).toBe(before);
    // an odd batch cannot be paired
    const odd = await syntheticData({ seed, resolution: 8, batchSize: 3, maxTokens: 6 }).next();
    expect(() => noiseBatch(odd, new Rng(seed), ac, { captionDropout: 0, patchSize: 2, paired: true })).toThrow(/even batch size, got 3/);
    expect(tf.memory().numTensors).toBe(before + 3);
    tf.dispose([batch.images, batch.tokens, batch.mask, odd.images, odd.tokens, odd.mask]);
  });

  it('L_guidance is the mean over pairs of w·mean((g_S − g_T)²), g = ε[:B/2] − ε[B/2:] (float64 reference)', async () => {
    const seed = freshSeed();
    const [B, C, H, W] = [4, 2, 3, 2];
    const n = B * C * H * W;
    const [t, s] = [randomArray(n, seed), randomArray(n, seed + 1)];
    const w = [0.25, 3, 0.25, 3]; // equal within a pair, as noiseBatch makes them
    const per = n / B;
    const reference = (weights: number[]) => {
      let sum = 0;
      for (let i = 0; i < B / 2; i++) {
        let sq = 0;
        for (let j = 0; j < per; j++) {
          const gT = t[i * per + j]! - t[(i + B / 2) * per + j]!;
          const gS = s[i * per + j]! - s[(i + B / 2) * per + j]!;
          sq += (gS - gT) ** 2;
        }
        sum += (weights[i]! * sq) / per;
      }
      return sum / (B / 2);
    };
    const [eT, eS] = [tf.tensor4d(t, [B, C, H, W]), tf.tensor4d(s, [B, C, H, W])];
    const wt = tf.tensor1d(w);
    await withNoLeaks(async () => {
      const [plain, weighted] = [guidanceLoss(eT, eS), guidanceLoss(eT, eS, wt)];
      const [p, q] = [(await plain.data())[0]!, (await weighted.data())[0]!];
      expect(Math.abs(p - reference([1, 1])) / reference([1, 1])).toBeLessThan(1e-5);
      expect(Math.abs(q - reference(w)) / reference(w)).toBeLessThan(1e-5);
      expect(p).toBeGreaterThan(0);
      // not L_pseudo: a shift shared by both halves of the student moves L_pseudo, not L_guidance
      const shifted = tf.add(eS, 1);
      const [g2, p1, p2] = [guidanceLoss(eT, shifted), pseudoLoss(eT, eS), pseudoLoss(eT, shifted)];
      expect((await g2.data())[0]).toBeCloseTo(p, 5);
      expect((await p2.data())[0]! - (await p1.data())[0]!).toBeGreaterThan(0.5);
      tf.dispose([plain, weighted, shifted, g2, p1, p2]);
    });
    const odd = tf.zeros([3, C, H, W]);
    expect(() => guidanceLoss(odd, odd)).toThrow(/paired batch \(an even batch size\), got 3 rows/);
    expect(() => guidanceLoss(eT, tf.zeros([4, 1, H, W]))).toThrow(/epsTeacher and epsStudent must have the same shape/);
    tf.dispose([eT, eS, wt, odd]);
  });

  it("the distill stage's loss adds λ·L_guidance of both models' outputs, as a part named guidance", async () => {
    const seed = freshSeed();
    const batch = await syntheticData({ seed, resolution: 8, batchSize: 4, maxTokens: 6 }).next();
    const ac = alphasCumprod();
    const m = models(seed);
    for (const cap of [1, 300]) {
      const nb = noiseBatch(batch, new Rng(seed), ac, { captionDropout: 0, patchSize: 2, pseudoX0Cap: cap, paired: true });
      // a first forward makes the models' cached constants (positional embeddings), which stay
      tf.tidy(() => {
        const y = m.encoder.encode(nb.tokens, nb.mask);
        for (const x of [m.teacher, m.student]) x.forward(nb.xt, nb.t, y, { yMask: nb.mask, dropCaption: nb.drop });
      });
      const cfg: StageConfig = { ...stageCfg(microPreset, 'distill', undefined, undefined), lambdaGuidance: 2.5, pseudoX0Cap: cap };
      expect(needsTeacher('distill', { ...cfg, lambdaPseudo: 0, lambdaMixer: 0 })).toBe(true);
      const before = tf.memory().numTensors;
      const sl = stageLoss('distill', cfg, { model: m.student, encoder: m.encoder, teacher: m.teacher }, nb);
      const loss = tf.tidy(() => sl.loss());
      const parts = sl.parts();
      expect(Object.keys(parts).sort()).toEqual(['guidance', 'mixer', 'mse', 'pseudo']);
      const [eS, eT] = tf.tidy(() => {
        const y = m.encoder.encode(nb.tokens, nb.mask);
        const o = { yMask: nb.mask, dropCaption: nb.drop };
        return [m.student.forward(nb.xt, nb.t, y, o), m.teacher.forward(nb.xt, nb.t, y, o)];
      });
      const want = guidanceLoss(eT, eS, nb.pseudoWeight);
      const got = (await parts.guidance!.data())[0]!;
      expect(got).toBeGreaterThan(0);
      expect(Math.abs(got - (await want.data())[0]!) / got).toBeLessThan(1e-5);
      const v = async (k: string) => (await parts[k]!.data())[0]!;
      const total = (await v('mse')) + cfg.lambdaPseudo * (await v('pseudo')) + cfg.lambdaMixer * (await v('mixer')) + 2.5 * got;
      expect(Math.abs((await loss.data())[0]! - total) / total).toBeLessThan(1e-5);
      sl.dispose();
      tf.dispose([loss, ...Object.values(parts), eS, eT, want]);
      expect(tf.memory().numTensors).toBe(before);
      disposeNoised(nb);
    }
    m.dispose();
    tf.dispose([batch.images, batch.tokens, batch.mask]);
  });

  it('steps on a fixed batch bring the guidance part down', async () => {
    const seed = 7;
    const m = models(seed);
    const cfg: StageConfig = {
      ...microPreset.stages.distill,
      lambdaPseudo: 0,
      lambdaMixer: 0,
      // L_guidance of these models is ~4e-5 against an L_mse of ~1, and Adam normalises each weight's step:
      // the term steers the update only where it dominates the gradient (λ = 50 here: the part grew)
      lambdaGuidance: 1e4,
      lr: 3e-3,
    };
    const stepper = createTrainStep({
      stage: 'distill',
      cfg,
      models: { model: m.student, encoder: m.encoder, teacher: m.teacher },
      alphasCumprod: alphasCumprod(microPreset.schedule),
      prediction: 'epsilon',
    });
    let before = 0;
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      if (i === 1) before = tf.memory().numTensors; // after the first step has made the optimiser's moments
      // the same images, t and ε every step: the part measures the same pairs
      const batch = await syntheticData({ seed, resolution: 8, batchSize: 4, maxTokens: 6 }).next();
      const res = stepper.step(batch, new Rng(seed), cfg.lr);
      seen.push((await res.parts.guidance!.data())[0]!);
      disposeStepResult(res);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(
      seen.every((g) => Number.isFinite(g) && g > 0),
      String(seen),
    ).toBe(true);
    expect(seen[5]!, String(seen)).toBeLessThan(seen[0]! * 0.9);
    stepper.dispose();
    m.dispose();
  });

  it('is refused for the teacher and forcing stages, an odd batch and a bad λ; a resume reads an absent λ as 0', async () => {
    const { teacher, forcing, distill, adapt, finetune } = microPreset.stages;
    for (const [stage, cfg] of [
      ['teacher', teacher],
      ['forcing', forcing],
    ] as const) {
      expect(() => checkStageConfig(stage, { ...cfg, lambdaGuidance: 1 })).toThrow(
        new InputError(
          `stage '${stage}' does not compare the student's output with the teacher's (only stages distill, adapt, finetune do), so its lambdaGuidance 1 would do nothing; leave it at 0.`,
        ),
      );
      expect(() => checkStageConfig(stage, { ...cfg, lambdaGuidance: 0 })).not.toThrow();
    }
    for (const [stage, cfg] of [
      ['distill', distill],
      ['adapt', adapt],
      ['finetune', finetune],
    ] as const) {
      expect(() => checkStageConfig(stage, { ...cfg, lambdaGuidance: 0.5 })).not.toThrow();
      expect(() => checkStageConfig(stage, { ...cfg, lambdaGuidance: 0.5, batchSize: 3 })).toThrow(
        new InputError(
          `stage '${stage}' lambdaGuidance pairs each image with its caption-dropped copy, so its batchSize must be even, got 3; pass an even batch size.`,
        ),
      );
      expect(() => checkStageConfig(stage, { ...cfg, batchSize: 3 })).not.toThrow(); // off: any batch size
    }
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => checkStageConfig('distill', { ...distill, lambdaGuidance: bad })).toThrow(
        new InputError(`stage 'distill' lambdaGuidance must be a finite number >= 0 (0 = off), got ${String(bad)}.`),
      );
    }
    // through the run options, before anything is written
    const bad = { ...world, preset: microPreset, teacher: teacherFile, out: join(root, 'bad'), stage: 'distill' as const };
    await expect(distillStudent({ ...bad, overrides: { distill: { lambdaGuidance: 1, batchSize: 3 } } })).rejects.toThrow(
      /batchSize must be even, got 3/,
    );
    await expect(distillStudent({ ...bad, stage: 'forcing', overrides: { forcing: { lambdaGuidance: 1 } } })).rejects.toThrow(
      /stage 'forcing' does not compare the student's output/,
    );
    await expect(
      trainTeacher({ ...world, preset: microPreset, out: join(root, 'bad-t'), overrides: { teacher: { lambdaGuidance: 1 } } }),
    ).rejects.toThrow(/stage 'teacher' does not compare the student's output/);
    // a checkpoint saved before the setting existed has it at 0
    const where = 'ckpt';
    const old = { ...microPreset, stages: { ...microPreset.stages, distill: { ...distill, lambdaGuidance: undefined } } };
    const resume = { resuming: true, stages: ['distill' as const], where };
    expect(continuedPreset(old, { distill: { lambdaGuidance: 0 } }, resume).stages.distill).toEqual(old.stages.distill);
    expect(() => continuedPreset(old, { distill: { lambdaGuidance: 1 } }, resume)).toThrow(
      "ckpt was made with stage 'distill' lambdaGuidance 0, not 1; --resume keeps the checkpoint's settings: drop the flag or start a new run in another --out.",
    );
  });

  it('λ = 0 trains bit for bit as without the setting; λ > 0 logs a finite, positive guidance part and stores λ', async () => {
    // min-SNR and the high-noise weights on, so the weights that follow t are part of what must match
    const distill = { steps: 3, minSnrGamma: 5, pseudoX0Cap: 100 };
    const run = (name: string, extra: Partial<StageConfig>) =>
      distillStudent({
        ...world,
        teacher: teacherFile,
        out: join(root, name),
        stage: 'distill',
        overrides: { distill: { ...distill, ...extra } },
      });
    await run('absent', {});
    await run('zero', { lambdaGuidance: 0 });
    await run('on', { lambdaGuidance: 4 });
    const metrics = (name: string) => readMetrics(join(root, name, 'metrics.jsonl'));
    const [absent, zero, on] = [metrics('absent'), metrics('zero'), metrics('on')];
    expect(absent.length).toBe(3);
    expect(zero).toEqual(absent); // loss, every part, gradient norm, lr: the same numbers
    expect(absent.every((r) => r.guidance === undefined)).toBe(true);
    const [wAbsent, wZero] = [
      await weightsOf(join(root, 'absent', 'model.safetensors')),
      await weightsOf(join(root, 'zero', 'model.safetensors')),
    ];
    expect(Object.keys(wAbsent).length).toBeGreaterThan(10);
    expect(wZero).toEqual(wAbsent);
    expect(on.length).toBe(3);
    for (const r of on) {
      const g = r.guidance as number;
      expect(Number.isFinite(g) && g > 0, JSON.stringify(r)).toBe(true);
      expect(Number.isFinite(r.loss)).toBe(true);
    }
    const ckpt = loadCheckpoint(join(root, 'on', 'latest.safetensors'));
    expect(JSON.parse(ckpt.metadata['t2md.preset']!).stages.distill.lambdaGuidance).toBe(4);
    disposeCheckpoint(ckpt);
  }, 60_000);
});
