/**
 * `StageConfig.recompute` (activation recomputation) changes memory, not the run: the same losses,
 * gradient norms and weights after a few steps of the teacher and distill stages, and the setting is
 * stored with the run's preset, kept by a resume and switchable by one.
 */
import { InputError, initBackend, Rng } from '@t2md/core';
import { relErr } from '@t2md/core/testing';
import { createDiT, type DiT, DiTBlock } from '@t2md/dit';
import { alphasCumprod } from '@t2md/sampler';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { checkStageConfig, type StageName } from './config.js';
import { continuedPreset } from './continued-preset.js';
import type { StageModels } from './stage-step.js';
import { createTrainStep, disposeStepResult } from './step.js';
import { createEncoder, microPreset, perturb, syntheticData, VOCAB } from './test-fixtures.js';

/** Losses, gradient norms and trained weights after `steps` steps of `stage`. */
async function run(stage: StageName, recompute: boolean, steps: number) {
  const p = microPreset;
  const encoder = createEncoder({ vocabSize: VOCAB, maxLength: p.captionTokens, ...p.textEncoder, seed: p.seed });
  const teacher = createDiT(p.teacher);
  perturb(teacher, 1);
  let student: DiT | undefined;
  if (stage !== 'teacher') {
    student = createDiT(p.student);
    perturb(student, 2);
  }
  const models: StageModels = student ? { model: student, encoder, teacher } : { model: teacher, encoder };
  const cfg = { ...p.stages[stage], recompute };
  const stepper = createTrainStep({ stage, cfg, models, alphasCumprod: alphasCumprod(p.schedule), prediction: 'epsilon' });
  const data = syntheticData({ seed: 5, resolution: cfg.resolution as number, batchSize: cfg.batchSize, maxTokens: p.captionTokens });
  const rng = new Rng(9);
  const spy = vi.spyOn(DiTBlock.prototype, 'applyRecomputed');
  const losses: number[] = [];
  const norms: number[] = [];
  for (let i = 0; i < steps; i++) {
    const batch = await data.next();
    const before = tf.memory().numTensors;
    const r = stepper.step(batch, rng, cfg.lr);
    // from the second step on (the first makes the optimiser's moments and caches), a step leaves only
    // its result (loss, parts, norm) and frees its batch: the recomputed backward frees its own tape
    const returned = new Set([r.loss, r.gradNorm, ...Object.values(r.parts)]).size; // the teacher's loss is its mse part
    if (i > 0) expect(tf.memory().numTensors, `tensors after step ${i}`).toBe(before - 3 + returned);
    losses.push((await r.loss.data())[0]!);
    norms.push((await r.gradNorm.data())[0]!);
    disposeStepResult(r);
  }
  // the trained model's blocks, once a step each (the frozen teacher's pass runs off the tape)
  expect(spy).toHaveBeenCalledTimes(recompute ? steps * models.model.depth : 0);
  spy.mockRestore();
  const weights = new Map<string, Float32Array>();
  for (const [n, v] of Object.entries(stepper.trainable)) weights.set(n, (await v.data()) as Float32Array);
  stepper.dispose();
  student?.dispose();
  teacher.dispose();
  encoder.dispose();
  return { losses, norms, weights };
}

describe('StageConfig.recompute (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  for (const stage of ['teacher', 'distill'] as const) {
    it(`the ${stage} stage takes the same steps with it as without`, async () => {
      const plain = await run(stage, false, 3);
      const again = await run(stage, true, 3);
      expect(again.losses).toEqual(plain.losses);
      for (const [i, n] of plain.norms.entries())
        expect(Math.abs(again.norms[i]! - n) / n, `gradient norm of step ${i}`).toBeLessThan(1e-6);
      let worst = 0;
      for (const [name, w] of plain.weights) {
        const e = relErr(again.weights.get(name)!, w);
        worst = Math.max(worst, e);
        expect(e, name).toBeLessThan(1e-6);
      }
      console.log(
        `recompute, ${stage} stage: 3 steps, losses ${plain.losses.map((l) => l.toFixed(5)).join(' ')}, ${plain.weights.size} trained weights, worst relative difference ${worst.toExponential(2)}`,
      );
    });
  }

  it('is a checked stage setting that a resume keeps, or switches', () => {
    expect(() => checkStageConfig('distill', { ...microPreset.stages.distill, recompute: 'yes' as never })).toThrow(InputError);
    expect(() => checkStageConfig('distill', { ...microPreset.stages.distill, recompute: true })).not.toThrow();
    const on = continuedPreset(microPreset, { distill: { recompute: true } }, { resuming: false, stages: ['distill'], where: 'x' });
    expect(on.stages.distill.recompute).toBe(true);
    // a resume without the flag keeps it; one with another value switches it (not a recipe setting)
    expect(continuedPreset(on, undefined, { resuming: true, stages: ['distill'], where: 'x' }).stages.distill.recompute).toBe(true);
    const off = continuedPreset(on, { distill: { recompute: false } }, { resuming: true, stages: ['distill'], where: 'x' });
    expect(off.stages.distill.recompute).toBe(false);
    // while a recipe setting still may not change
    expect(() =>
      continuedPreset(on, { distill: { recompute: false, lr: 9 } }, { resuming: true, stages: ['distill'], where: 'x' }),
    ).toThrow(/--resume keeps the checkpoint's settings/);
  });
});
