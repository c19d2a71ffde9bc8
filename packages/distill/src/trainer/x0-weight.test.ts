/**
 * L_mse's high-noise weighting (`StageConfig.x0WeightCap`, `t2md train|distill --x0-weight Γ`): Γ = 1
 * trains bit for bit as without it; the batch's weights are min-SNR-γ's times clamp(1/SNR_t, 1, Γ) over
 * its mean (float64 reference, the RNG stream unchanged); bad values, v models and teacher forcing are
 * refused; the value is stored with the run, and a checkpoint saved before the field resumes as Γ = 1.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, initBackend, Rng } from '@t2md/core';
import { freshSeed } from '@t2md/core/testing';
import { createDiT } from '@t2md/dit';
import { alphasCumprod } from '@t2md/sampler';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../checkpoint/metrics.js';
import { highNoiseWeights, minSnrWeights } from '../losses/losses.js';
import { checkStageConfig, type StageConfig } from './config.js';
import { continuedPreset } from './continued-preset.js';
import { readCheckpointHeader, readModelHeader } from './model-file.js';
import { distillStudent, trainTeacher } from './pipeline.js';
import { disposeNoised, noiseBatch } from './stage-step.js';
import { createTrainStep, disposeStepResult } from './step.js';
import { createEncoder, microPreset, perturb, syntheticData, VOCAB } from './test-fixtures.js';

const world = { data: syntheticData, createEncoder, vocabSize: VOCAB };
let root: string;

/** The losses and final trained weights of `steps` micro-teacher steps from fixed seeds, with `extra` in the stage config. */
async function train(extra: Partial<StageConfig>, steps = 2): Promise<{ losses: number[]; weights: number[][]; rng: unknown }> {
  const p = microPreset;
  const encoder = createEncoder({ vocabSize: VOCAB, maxLength: p.captionTokens, ...p.textEncoder, seed: p.seed });
  const model = createDiT(p.teacher);
  perturb(model, 1);
  const cfg: StageConfig = { ...p.stages.teacher, ...extra };
  checkStageConfig('teacher', cfg);
  const models = { model, encoder };
  const stepper = createTrainStep({ stage: 'teacher', cfg, models, alphasCumprod: alphasCumprod(p.schedule), prediction: 'epsilon' });
  const data = syntheticData({ seed: 5, resolution: cfg.resolution as number, batchSize: cfg.batchSize, maxTokens: p.captionTokens });
  const rng = new Rng(9);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const r = stepper.step(await data.next(), rng, 2e-3);
    losses.push((await r.loss.data())[0]!);
    disposeStepResult(r);
  }
  const weights = await Promise.all(Object.values(stepper.trainable).map(async (v) => Array.from(await v.data())));
  stepper.dispose();
  model.dispose();
  encoder.dispose();
  return { losses, weights, rng: rng.state };
}

/** clamp(1/SNR_t, 1, Γ) / its mean over t, times min(SNR_t, γ)/SNR_t when γ > 0: the weights written out in float64. */
function reference(ts: number[], ac: Float64Array, gamma: number, cap: number): number[] {
  const clamp = (t: number) => Math.min(Math.max((1 - ac[t]!) / ac[t]!, 1), cap);
  let mean = 0;
  for (let t = 0; t < ac.length; t++) mean += clamp(t) / ac.length;
  return ts.map((t) => {
    const snr = ac[t]! / (1 - ac[t]!);
    return (gamma > 0 ? Math.min(snr, gamma) / snr : 1) * (clamp(t) / mean);
  });
}

describe('high-noise weighting of L_mse (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    root = mkdtempSync(join(tmpdir(), 't2md-x0w-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('Γ = 1 trains bit for bit as without the setting (with and without min-SNR); Γ > 1 changes the steps', async () => {
    await train({}, 1); // the models' cached constants (positional embeddings) are made once and stay
    const before = tf.memory().numTensors;
    for (const minSnrGamma of [0, 5]) {
      const [plain, one] = [await train({ minSnrGamma }), await train({ minSnrGamma, x0WeightCap: 1 })];
      expect(one.losses).toEqual(plain.losses);
      expect(one.weights).toEqual(plain.weights);
      expect(one.rng).toEqual(plain.rng);
      expect(plain.losses.every(Number.isFinite)).toBe(true);
      const weighted = await train({ minSnrGamma, x0WeightCap: 50 });
      expect(weighted.rng).toEqual(plain.rng); // the same draws
      expect(weighted.losses[0]).not.toBe(plain.losses[0]);
      expect(weighted.losses.every(Number.isFinite)).toBe(true);
    }
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);

  it("noiseBatch keeps its RNG stream and weights L_mse by min-SNR-γ's × the high-noise weights (float64 reference)", async () => {
    const seed = freshSeed();
    const batch = await syntheticData({ seed, resolution: 8, batchSize: 16, maxTokens: 6 }).next();
    const ac = alphasCumprod();
    const before = tf.memory().numTensors;
    for (const [minSnrGamma, paired] of [
      [0, false],
      [5, false],
      [5, true],
    ] as const) {
      const cap = 20 + (freshSeed() % 500);
      const base = { captionDropout: 0.3, patchSize: 2, minSnrGamma, paired };
      const [rPlain, rWeighted] = [new Rng(seed), new Rng(seed)];
      const plain = noiseBatch(batch, rPlain, ac, base);
      const nb = noiseBatch(batch, rWeighted, ac, { ...base, x0WeightCap: cap });
      expect(rWeighted.state).toEqual(rPlain.state);
      for (const k of ['xt', 't', 'noise', 'target', 'drop'] as const)
        expect(Array.from(await nb[k].data())).toEqual(Array.from(await plain[k].data()));
      const ts = Array.from(await nb.t.data());
      if (paired) expect(ts.slice(8)).toEqual(ts.slice(0, 8));
      const got = Array.from(await nb.weight!.data());
      const want = reference(ts, ac, minSnrGamma, cap);
      for (const [i, t] of ts.entries())
        expect(Math.abs(got[i]! - want[i]!) / want[i]!, `t=${t}, Γ=${cap}, γ=${minSnrGamma}`).toBeLessThan(1e-6);
      // the library's two weightings, multiplied elementwise in float32
      const snr = minSnrGamma > 0 ? minSnrWeights(ts, ac, minSnrGamma) : ts.map(() => 1);
      const high = highNoiseWeights(ts, ac, cap);
      expect(got).toEqual(ts.map((_, i) => Math.fround(snr[i]! * high[i]!)));
      // not vacuous: every batch's weights differ from min-SNR-γ's alone (the high-noise weights are
      // normalised to mean 1 over t, so none is exactly 1), and the noisiest step is weighted above it.
      // Whether a drawn t lands above the mean depends on Γ and the draw, so that is checked at t = 999.
      expect(ts.some((_, i) => got[i] !== Math.fround(snr[i]!))).toBe(true);
      expect(highNoiseWeights([999], ac, cap)[0]).toBeGreaterThan(1);
      if (minSnrGamma === 0) expect(plain.weight).toBeUndefined();
      expect(nb.pseudoWeight).toBeUndefined();
      for (const b of [plain, nb]) disposeNoised(b);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([batch.images, batch.tokens, batch.mask]);
  });

  it('refuses Γ < 1 or not finite, Γ > 1 with v prediction, and Γ > 1 for teacher forcing', () => {
    const before = tf.memory().numTensors;
    const teacher = microPreset.stages.teacher;
    for (const cap of [0.5, 0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => checkStageConfig('teacher', { ...teacher, x0WeightCap: cap })).toThrow(
        new InputError(`stage 'teacher' x0WeightCap must be a finite number >= 1 (1 = off), got ${String(cap)}.`),
      );
    }
    for (const cap of [1, 10]) expect(() => checkStageConfig('teacher', { ...teacher, x0WeightCap: cap })).not.toThrow();
    expect(() => checkStageConfig('teacher', { ...teacher, prediction: 'v', x0WeightCap: 10 })).toThrow(
      new InputError(
        "stage 'teacher' sets x0WeightCap, which weights an ε model's L_mse, but its prediction is v (its L_mse already weights high noise); leave it at 1.",
      ),
    );
    expect(() => checkStageConfig('teacher', { ...teacher, prediction: 'v', x0WeightCap: 1 })).not.toThrow();
    expect(() => checkStageConfig('forcing', { ...microPreset.stages.forcing, x0WeightCap: 10 })).toThrow(
      new InputError(
        "stage 'forcing' has no L_mse (teacher forcing matches each mixer's output), so its x0WeightCap 10 would do nothing; leave it at 1.",
      ),
    );
    for (const s of ['distill', 'adapt', 'finetune'] as const) {
      expect(() => checkStageConfig(s, { ...microPreset.stages[s], x0WeightCap: 10 })).not.toThrow();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a v teacher run and a distill run from a v teacher refuse it before writing; an ε student trains with it', async () => {
    const before = tf.memory().numTensors;
    const vRun = { ...world, preset: microPreset, out: join(root, 'v-refused'), steps: 2 };
    await expect(trainTeacher({ ...vRun, overrides: { teacher: { prediction: 'v', x0WeightCap: 10 } } })).rejects.toThrow(
      /x0WeightCap, which weights an ε model's L_mse, but its prediction is v/,
    );
    expect(existsSync(vRun.out)).toBe(false);
    const [tDir, vDir] = [join(root, 't'), join(root, 'v')];
    await trainTeacher({ ...world, preset: microPreset, out: tDir, steps: 2 });
    await trainTeacher({ ...world, preset: microPreset, out: vDir, steps: 2, overrides: { teacher: { prediction: 'v' } } });
    const vTeacher = join(vDir, 'model.safetensors');
    const out = join(root, 'from-v');
    await expect(
      distillStudent({ ...world, teacher: vTeacher, out, stage: 'distill', overrides: { distill: { x0WeightCap: 10 } } }),
    ).rejects.toThrow(
      new InputError(
        `stage 'distill' sets x0WeightCap, which weights an ε student's L_mse, but ${vTeacher} predicts v (its L_mse already weights high noise); leave it at 1.`,
      ),
    );
    expect(existsSync(out)).toBe(false);
    // an ε student: the distill stage trains with it and stores it
    const s = join(root, 's');
    await distillStudent({
      ...world,
      teacher: join(tDir, 'model.safetensors'),
      out: s,
      stage: 'distill',
      overrides: { distill: { steps: 2, x0WeightCap: 50 } },
    });
    const loss = readMetrics(join(s, 'metrics.jsonl')).map((r) => r.loss!);
    expect(loss.length).toBe(2);
    expect(loss.every(Number.isFinite)).toBe(true);
    expect(readModelHeader(join(s, 'model.safetensors')).preset?.stages.distill.x0WeightCap).toBe(50);
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);

  it("is stored with the run's settings; a checkpoint saved before the field resumes as Γ = 1", async () => {
    const before = tf.memory().numTensors;
    const common = { ...world, preset: microPreset };
    // a run without the setting: its checkpoint has no x0WeightCap, as one saved before the field existed
    const old = join(root, 'old');
    await trainTeacher({ ...common, out: old, steps: 2 });
    expect(readCheckpointHeader(join(old, 'latest.safetensors')).preset.stages.teacher.x0WeightCap).toBeUndefined();
    await expect(
      trainTeacher({ ...common, out: old, resume: true, steps: 3, overrides: { teacher: { x0WeightCap: 10 } } }),
    ).rejects.toThrow(
      new InputError(
        `${join(old, 'latest.safetensors')} was made with stage 'teacher' x0WeightCap 1, not 10; --resume keeps the checkpoint's settings: drop the flag or start a new run in another --out.`,
      ),
    );
    await trainTeacher({ ...common, out: old, resume: true, steps: 3, overrides: { teacher: { x0WeightCap: 1 } } });
    expect(readMetrics(join(old, 'metrics.jsonl')).map((r) => r.step)).toEqual([1, 2, 3]);
    // the same rule in continuedPreset alone
    const saved = microPreset;
    expect(saved.stages.teacher.x0WeightCap).toBeUndefined();
    const where = 'ckpt';
    expect(continuedPreset(saved, { teacher: { x0WeightCap: 1 } }, { resuming: true, stages: ['teacher'], where }).stages.teacher).toEqual(
      saved.stages.teacher,
    );
    // a run with it stores it; a resume keeps it, and refuses another value
    const run = join(root, 'with');
    await trainTeacher({ ...common, out: run, steps: 2, overrides: { teacher: { x0WeightCap: 30 } } });
    expect(readCheckpointHeader(join(run, 'latest.safetensors')).preset.stages.teacher.x0WeightCap).toBe(30);
    expect(readModelHeader(join(run, 'model.safetensors')).preset?.stages.teacher.x0WeightCap).toBe(30);
    await expect(trainTeacher({ ...common, out: run, resume: true, steps: 3, overrides: { teacher: { x0WeightCap: 1 } } })).rejects.toThrow(
      /was made with stage 'teacher' x0WeightCap 30, not 1/,
    );
    await trainTeacher({ ...common, out: run, resume: true, steps: 3 });
    expect(readCheckpointHeader(join(run, 'latest.safetensors')).preset.stages.teacher.x0WeightCap).toBe(30);
    expect(tf.memory().numTensors).toBe(before);
  }, 60_000);
});
