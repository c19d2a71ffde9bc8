import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, Rng } from '@t2md/core';
import { captionedDenoiser, createDiT, transferFromTeacher } from '@t2md/dit';
import { alphasCumprod, sample } from '@t2md/sampler';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeCheckpoint, loadCheckpoint } from '../checkpoint/checkpoint.js';
import { readMetrics } from '../checkpoint/metrics.js';
import { forcingLoss } from '../losses/losses.js';
import { loadTrainedModel } from './model-file.js';
import { distillStudent, trainTeacher } from './pipeline.js';
import { disposeNoised, noiseBatch, stageLoss } from './stage-step.js';
import { createEncoder, microPreset, microStudent, syntheticData, VOCAB } from './test-fixtures.js';
import type { TrainProgress } from './types.js';

const common = { preset: microPreset, data: syntheticData, createEncoder, vocabSize: VOCAB };
let root: string;
let teacherPath: string;

async function weightsOf(path: string): Promise<Record<string, Float32Array>> {
  const ckpt = loadCheckpoint(path);
  const out: Record<string, Float32Array> = {};
  for (const [n, t] of Object.entries(ckpt.weights)) out[n] = (await t.data()) as Float32Array;
  disposeCheckpoint(ckpt);
  return out;
}

describe('staged trainer (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    root = mkdtempSync(join(tmpdir(), 't2md-distill-'));
    // A tiny teacher trained for a few dozen steps: what every distillation test starts from.
    const r = await trainTeacher({ ...common, out: join(root, 'teacher'), overrides: { teacher: { steps: 24, lr: 3e-3 } } });
    teacherPath = r.model!;
  });

  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('resuming after an interruption reproduces the uninterrupted loss curve exactly', async () => {
    const opts = { ...common, overrides: { teacher: { steps: 8, checkpointEvery: 4 } } };
    const straight = join(root, 'straight');
    await trainTeacher({ ...opts, out: straight });
    // Interrupted run: dies (an exception, like kill -9: no save) after step 6; the checkpoint is at 4,
    // the metrics file already has lines 5 and 6, and a torn half line.
    const broken = join(root, 'broken');
    const crash = (p: TrainProgress) => {
      if (p.step === 6) throw new Error('simulated crash');
    };
    await expect(trainTeacher({ ...opts, out: broken, onProgress: crash })).rejects.toThrow('simulated crash');
    appendFileSync(join(broken, 'metrics.jsonl'), '{"step": 7, "lo');
    expect(readMetrics(join(broken, 'metrics.jsonl')).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    // A fresh start of the models, optimiser and RNGs from the file: nothing survives in memory.
    const before = tf.memory().numTensors;
    const resumed = await trainTeacher({ ...common, out: broken, resume: true });
    expect(resumed.step).toBe(8);
    expect(tf.memory().numTensors).toBe(before);
    const a = readFileSync(join(straight, 'metrics.jsonl'), 'utf8');
    const b = readFileSync(join(broken, 'metrics.jsonl'), 'utf8');
    expect(a.split('\n').length).toBe(9);
    expect(b).toBe(a); // every loss, gradient norm and learning rate, bit for bit
    const [wa, wb] = [await weightsOf(join(straight, 'latest.safetensors')), await weightsOf(join(broken, 'latest.safetensors'))];
    for (const n of Object.keys(wa)) expect(Array.from(wb[n]), n).toEqual(Array.from(wa[n]));
  });

  it('teacher forcing: gradients reach only the Mamba mixers; every other weight stays bit-identical', async () => {
    const tm = loadTrainedModel(teacherPath, createEncoder);
    const student = createDiT(microStudent);
    transferFromTeacher(student, tm.model);
    const data = syntheticData({ seed: 5, resolution: 8, batchSize: 2, maxTokens: 6 });
    const batch = await data.next();
    const nb = noiseBatch(batch, new Rng(1), alphasCumprod(), { captionDropout: 0.1, patchSize: 2 });
    const models = { model: student, encoder: tm.encoder, teacher: tm.model };
    const sl = stageLoss('forcing', microPreset.stages.forcing, models, nb);
    const pre = (p: string, w: Record<string, tf.Variable>) => Object.fromEntries(Object.entries(w).map(([n, v]) => [p + n, v]));
    const all = { ...pre('student.', student.weights()), ...pre('encoder.', tm.encoder.weights()), ...pre('teacher.', tm.model.weights()) };
    const names = new Map(Object.entries(all).map(([n, v]) => [v.name, n]));
    const { value, grads } = tf.variableGrads(sl.loss, Object.values(all));
    let mamba = 0;
    for (const [varName, g] of Object.entries(grads)) {
      const name = names.get(varName)!;
      const norm = g == null ? 0 : (await tf.norm(g).data())[0];
      const isMamba = /^student\.blocks\.\d+\.mixer\./.test(name);
      if (isMamba) {
        mamba++;
        expect(norm, name).toBeGreaterThan(0);
      } else {
        expect(norm, name).toBe(0);
      }
    }
    expect(mamba).toBeGreaterThan(10);
    tf.dispose([value, ...(Object.values(grads).filter(Boolean) as tf.Tensor[]), ...Object.values(sl.parts())]);
    sl.dispose();
    disposeNoised(nb);
    tf.dispose([batch.images, batch.tokens, batch.mask]);
    const initial: Record<string, Float32Array> = {};
    for (const [n, v] of Object.entries(student.weights())) initial[`model.${n}`] = (await v.data()) as Float32Array;
    student.dispose();
    tm.dispose();

    // Two real forcing steps: only blocks.N.mixer.* moved.
    const out = join(root, 'forcing-only');
    await distillStudent({ ...common, out, teacher: teacherPath, stage: 'forcing', overrides: { forcing: { steps: 2 } } });
    const after = await weightsOf(join(out, 'latest.safetensors'));
    let moved = 0;
    for (const [n, v] of Object.entries(initial)) {
      if (/^model\.blocks\.\d+\.mixer\./.test(n)) {
        if (Array.from(after[n]).some((x, i) => x !== v[i])) moved++;
      } else {
        expect(Array.from(after[n]), n).toEqual(Array.from(v));
      }
    }
    expect(moved).toBeGreaterThan(10);
  });

  it('a tiny teacher -> student distillation cuts the forcing (mixer) loss at least 10x', async () => {
    const out = join(root, 'forcing-cut');
    // The loss on one fixed held-out batch, before and after: the same teacher taps both times.
    const evalLoss = async (studentFile?: string) => {
      const tm = loadTrainedModel(teacherPath, createEncoder);
      const st = studentFile ? loadTrainedModel(studentFile, createEncoder, { ema: false }) : undefined;
      const student = st?.model ?? createDiT(microStudent);
      const data = syntheticData({ seed: 99, resolution: 8, batchSize: 8, maxTokens: 6 });
      const batch = await data.next();
      const nb = noiseBatch(batch, new Rng(7), alphasCumprod(), { captionDropout: 0, patchSize: 2 });
      const y = tm.encoder.encode(nb.tokens, nb.mask);
      const cap = tm.model.forward(nb.xt, nb.t, y, { yMask: nb.mask, capture: true });
      const layers = student.blocks
        .map((b, n) => ({ b, n }))
        .filter(({ b }) => b.kind !== 'SA')
        .map(({ b, n }) => ({ mixer: (h: tf.Tensor) => b.mixer.apply(h, nb.grid), input: cap.taps[n].input, target: cap.taps[n].output }));
      const loss = forcingLoss(layers);
      const v = (await loss.data())[0];
      tf.dispose([loss, y, cap.out, ...cap.taps.flatMap((t) => [t.input, t.output]), batch.images, batch.tokens, batch.mask]);
      disposeNoised(nb);
      if (st) st.dispose();
      else student.dispose();
      tm.dispose();
      return v;
    };
    const initial = await evalLoss();
    const t0 = performance.now();
    const counts: number[] = [];
    const r = await distillStudent({
      ...common,
      out,
      teacher: teacherPath,
      stage: 'forcing',
      overrides: { forcing: { steps: 200, lr: 1e-2, warmupSteps: 5, lrDecay: 'cosine', minLr: 5e-4, batchSize: 4 } },
      onProgress: () => counts.push(tf.memory().numTensors),
    });
    const seconds = (performance.now() - t0) / 1000;
    // The live (not EMA) weights are in latest.safetensors; its `model.` part loads as a model file.
    const final = await evalLoss(r.checkpoint);
    console.log(
      `forcing loss ${initial.toFixed(4)} -> ${final.toFixed(4)} (${(initial / final).toFixed(1)}x) in 200 steps, ${seconds.toFixed(1)} s`,
    );
    expect(final).toBeLessThan(initial / 10);
    // No growth: the live-tensor count is the same after every step.
    expect(new Set(counts.slice(1)).size).toBe(1);
  });

  it('distill --stage all runs forcing, distill, adapt, finetune; an abort saves and a resume matches the straight run', async () => {
    const overrides = { forcing: { steps: 2 }, distill: { steps: 3 }, adapt: { steps: 2 }, finetune: { steps: 2 } };
    const straight = join(root, 'all-straight');
    const counts: Record<string, number[]> = {};
    const r = await distillStudent({
      ...common,
      out: straight,
      teacher: teacherPath,
      overrides,
      onProgress: (p) => {
        counts[p.stage] ??= [];
        counts[p.stage].push(tf.memory().numTensors);
      },
    });
    expect(r.stage).toBe('finetune');
    for (const [s, c] of Object.entries(counts)) expect(new Set(c.slice(1)).size, s).toBe(1);
    // Aborted in the middle of the distill stage (Ctrl-C): a checkpoint at that step, then resume.
    const cut = join(root, 'all-cut');
    const ac = new AbortController();
    const first = await distillStudent({
      ...common,
      out: cut,
      teacher: teacherPath,
      overrides,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.stage === 'distill' && p.step === 1) ac.abort();
      },
    });
    expect(first).toMatchObject({ aborted: true, stage: 'distill', step: 1 });
    const second = await distillStudent({ ...common, out: cut, teacher: teacherPath, resume: true });
    expect(second).toMatchObject({ aborted: false, stage: 'finetune', step: 2 });
    expect(readFileSync(join(cut, 'metrics.jsonl'), 'utf8')).toBe(readFileSync(join(straight, 'metrics.jsonl'), 'utf8'));
    // The student model file samples, with guidance from the null caption, at the finetune resolution.
    const before = tf.memory().numTensors;
    const m = loadTrainedModel(join(straight, 'model.safetensors'), createEncoder);
    expect(m.model.config.posEmbed).toBe('centered');
    const tokens = tf.tensor2d([[1, 2, 3, 0, 0, 0]], [1, 6], 'int32');
    const mask = tf.tensor2d([[1, 1, 1, 0, 0, 0]], [1, 6], 'bool');
    const feats = m.encoder.encode(tokens, mask); // [1, 6, Dc]
    const den = captionedDenoiser(m.model, feats, mask, true);
    feats.dispose();
    const img = await sample({ model: den.model, sampler: 'ddim', steps: 3, shape: [1, 3, 12, 12], seed: 1, guidance: { scale: 3 } });
    expect(img.shape).toEqual([1, 3, 12, 12]);
    expect(Array.from(await img.data()).every(Number.isFinite)).toBe(true);
    den.dispose();
    tf.dispose([img, tokens, mask]);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses bad runs with one message that says how to mend them', async () => {
    const fresh = join(root, 'nothing-here');
    await expect(trainTeacher({ ...common, out: fresh, resume: true })).rejects.toThrow(/does not exist, so there is nothing to resume/);
    await expect(trainTeacher({ ...common, out: join(root, 'teacher') })).rejects.toThrow(
      /already holds a checkpoint .*; resume it, or choose another out folder/,
    );
    await expect(trainTeacher({ ...common, out: fresh, preset: 'huge' })).rejects.toThrow(/unknown preset "huge"; use one of tiny, shapes/);
    await expect(trainTeacher({ ...common, out: fresh, steps: -3 })).rejects.toThrow(/steps must be an integer in \[1, /);
    await expect(distillStudent({ ...common, out: fresh, teacher: join(root, 'missing.safetensors') })).rejects.toThrow(/does not exist/);
    await expect(distillStudent({ ...common, out: fresh, teacher: teacherPath, preset: 'tiny' })).rejects.toThrow(
      /has hiddenSize 32 but preset 'tiny' expects 64/,
    );
  });
});
