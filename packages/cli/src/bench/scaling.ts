/**
 * `t2md bench scaling`: one denoising forward of the teacher (`pixartXL2`, SA×28) and the hybrid student
 * (`t2mdXL2`, 4 SA + 24 bidirectional Mamba-2) side by side, at batch 1 and the CFG batch of 2, over
 * token counts up to 4K (32,400 tokens: a 360×360 latent, 180×180 tokens at patch 2), with a split by
 * component and the peak memory of each forward.
 */

import { InputError } from '@t2md/core';
import { createDiT, type DiT, type DiTConfig, pixartXL2, t2mdXL2 } from '@t2md/dit';
import * as tf from '@tensorflow/tfjs-core';
import { checked, devicePeakMB, failRow, median, normal, pickSizes, type RunnerOptions, round, sync, timeRuns } from './measure.js';

/** A 4-block model at width 128 (head dim 32) for CPUs and SwiftShader, laid out like the XL pair. */
const quickTeacher: DiTConfig = Object.freeze({
  inChannels: 4,
  patchSize: 2,
  hiddenSize: 128,
  numHeads: 4,
  mlpRatio: 4,
  captionChannels: 64,
  captionLength: 16,
  learnSigma: true,
  layout: 'SA*4',
  posEmbed: 'sincos',
  baseGrid: Object.freeze([16, 16]) as readonly [number, number],
});
const quickStudent: DiTConfig = Object.freeze({
  ...quickTeacher,
  layout: 'SA-HM-WM-HM',
  mamba: Object.freeze({ dState: 16, expand: 2, headdim: 32, chunkSize: 64 }),
});

export interface ScalingPlan {
  teacher: { name: string; config: DiTConfig };
  student: { name: string; config: DiTConfig };
  tokens: number[];
  batches: number[];
}

export function scalingPlan(quick: boolean, sizes?: readonly number[], batches?: readonly number[]): ScalingPlan {
  const plan: ScalingPlan = quick
    ? {
        teacher: { name: 'quick teacher (SA×4, 128 wide)', config: quickTeacher },
        student: { name: 'quick student (SA-HM-WM-HM)', config: quickStudent },
        tokens: pickSizes([256, 1024], sizes),
        batches: [...(batches ?? [1, 2])],
      }
    : {
        teacher: { name: 'pixartXL2', config: pixartXL2 },
        student: { name: 't2mdXL2', config: t2mdXL2 },
        tokens: pickSizes([1024, 4096, 16384, 32400], sizes),
        batches: [...(batches ?? [1, 2])],
      };
  for (const T of plan.tokens) {
    const g = Math.round(Math.sqrt(T));
    if (g * g !== T) throw new InputError(`scaling needs square token grids, but ${T} tokens are not a square; use e.g. 4096 or 32400.`);
  }
  return plan;
}

/**
 * One (tokens, batch) point. Times are medians of wall ms per forward; the split times the token mixers
 * (and cross-attentions) of every block alone on inputs of the same shape, and `rest` is the forward
 * minus those (norms, modulation, MLPs, embedders, final layer, and tfjs's per-op overhead).
 * Memory, in MiB: `teacherMB`/`studentMB` = weights + inputs + the high-water of live tfjs tensor bytes
 * during one forward; `teacherDeviceMB`/`studentDeviceMB` = the device-true peak of the model's whole
 * measurement (forwards and the split), tfjs's buffer pool included, less the other model's weights.
 */
export interface ScalingRow {
  tokens: number;
  batch: number;
  /** Latent side (H = W) of the [batch, 4, H, W] input. */
  latent: number;
  teacherMs: number | null;
  studentMs: number | null;
  /** teacherMs / studentMs: the student's speed-up. */
  ratio: number | null;
  teacherMB: number | null;
  studentMB: number | null;
  teacherAttnMs: number | null;
  teacherCrossMs: number | null;
  teacherRestMs: number | null;
  studentAttnMs: number | null;
  studentMambaMs: number | null;
  studentCrossMs: number | null;
  studentRestMs: number | null;
  teacherWeightsMB: number;
  studentWeightsMB: number;
  /**
   * WebGPU only: the most bytes tfjs-webgpu had allocated from the device at once while this model was
   * measured (its weights, inputs, activations, the pool of released buffers, uniforms and staging
   * buffers), less the other model's weights, which the bench keeps resident (its caches it frees). The pool is released
   * before each model. Absent in older files (some have `gpuPoolMB`: the pool's size after the point).
   */
  teacherDeviceMB?: number;
  studentDeviceMB?: number;
  teacherRuns: number[];
  studentRuns: number[];
  error?: string;
}

const MiB = 2 ** 20;

/**
 * Moves every weight off its initialisation by N(0, std²) noise. A fresh DiT has zero adaLN tables,
 * t_block, cross-attention projections and final layer; a model of zeros is not what a trained one
 * computes (and a backend may short-cut it), so the timings would flatter both. One noise pool, read
 * at a different offset per weight, keeps this cheap at 600M parameters.
 */
export function perturbWeights(model: DiT, seed: number, std = 0.02): void {
  const ws = Object.values(model.weights()).filter((w) => w.dtype === 'float32');
  const spread = 4099;
  const pool = normal([Math.max(...ws.map((w) => w.size)) + spread], seed, std);
  ws.forEach((w, i) => {
    tf.tidy(() => {
      const noise = tf.reshape(tf.slice(pool, [(i * 7919) % spread], [w.size]), w.shape);
      w.assign(tf.add(w, noise));
    });
  });
  pool.dispose();
}

function weightBytes(model: DiT): number {
  return Object.values(model.weights()).reduce((a, w) => a + 4 * w.size, 0);
}

interface ModelPoint {
  ms: number;
  runs: number[];
  mb: number;
  attnMs: number;
  mambaMs: number;
  crossMs: number;
}

/**
 * Median ms of `apply(i)` for every block `pick` selects, back to back (each on the same input) with
 * one sync at the end; 0 when no block is picked. No warm-up: the forwards before it ran every kernel
 * at these shapes.
 */
async function componentMs(model: DiT, pick: (kind: string) => boolean, apply: (i: number) => tf.Tensor, runs: number): Promise<number> {
  const idx = model.blocks.map((b, i) => (pick(b.kind) ? i : -1)).filter((i) => i >= 0);
  if (idx.length === 0) return 0;
  const fn = () => {
    let last: tf.Tensor | undefined;
    for (const i of idx) {
      const o = tf.tidy(() => apply(i));
      last?.dispose(); // GPU queues run in order: the buffer is reused only after this mixer has run
      last = o;
    }
    return last!;
  };
  return median(await timeRuns(fn, { runs, warmup: 0, budgetMs: 45_000 }));
}

async function measureModel(model: DiT, T: number, N: number, seed: number, runs: number): Promise<ModelPoint> {
  const c = model.config;
  const g = Math.round(Math.sqrt(T));
  const side = g * c.patchSize;
  const Lc = c.captionLength ?? 120;
  const x = normal([N, c.inChannels, side, side], seed); // [N, C, H, W]
  const t = tf.fill([N], 500, 'float32'); // [N]
  const y = normal([N, Lc, c.captionChannels], seed + 1); // [N, Lc, Dc]
  // Inputs of the component split, of the shapes the blocks see: modulated tokens and projected caption.
  const h = normal([N, T, c.hiddenSize], seed + 2); // [N, T, D]
  const yEmb = normal([N, Lc, c.hiddenSize], seed + 3); // [N, Lc, D]
  try {
    // The first forward compiles pipelines and fills the buffer pool: it is the warm-up, and under
    // tf.profile it also gives the high-water of live tensor bytes.
    const before = tf.memory().numBytes; // both models' weights and every input above
    const prof = await tf.profile(() => model.forward(x, t, y));
    const out = prof.result as tf.Tensor;
    await sync(out);
    out.dispose();
    const inputBytes = 4 * (x.size + t.size + y.size); // what this forward reads besides weights
    const mb = (weightBytes(model) + inputBytes + Math.max(0, prof.peakBytes - before)) / MiB;
    const forwardRuns = await timeRuns(() => model.forward(x, t, y), { runs, warmup: 0, budgetMs: 60_000 });
    const grid: [number, number] = [g, g];
    const mixer = (i: number) => model.blocks[i]!.mixer.apply(h, grid);
    const attnMs = await componentMs(model, (k) => k === 'SA', mixer, runs);
    const mambaMs = await componentMs(model, (k) => k !== 'SA', mixer, runs);
    const crossMs = await componentMs(
      model,
      () => true,
      (i) => model.blocks[i]!.crossAttn.apply(h, yEmb),
      runs,
    );
    return { ms: median(forwardRuns), runs: forwardRuns, mb, attnMs, mambaMs, crossMs };
  } finally {
    tf.dispose([x, t, y, h, yEmb]);
  }
}

export async function runScalingBench(opts: RunnerOptions): Promise<ScalingRow[]> {
  const plan = scalingPlan(opts.quick, opts.sizes, opts.batches);
  opts.log(`scaling: building ${plan.teacher.name} and ${plan.student.name} (random weights)`);
  const t0 = performance.now();
  const teacher = createDiT({ ...plan.teacher.config, seed: 1 });
  const student = createDiT({ ...plan.student.config, seed: 2 });
  perturbWeights(teacher, 11);
  perturbWeights(student, 12);
  opts.log(
    `  built in ${((performance.now() - t0) / 1000).toFixed(1)} s: teacher ${(weightBytes(teacher) / MiB).toFixed(0)} MiB, student ${(weightBytes(student) / MiB).toFixed(0)} MiB of weights`,
  );
  const rows: ScalingRow[] = [];
  try {
    for (const T of plan.tokens) {
      for (const N of plan.batches) {
        const g = Math.round(Math.sqrt(T));
        const runs = opts.quick ? 3 : T >= 16384 ? 3 : 5;
        opts.log(`scaling: ${T} tokens (${g}×${g}, latent ${g * 2}²), batch ${N}`);
        const row: ScalingRow = {
          tokens: T,
          batch: N,
          latent: g * teacher.config.patchSize,
          teacherMs: null,
          studentMs: null,
          ratio: null,
          teacherMB: null,
          studentMB: null,
          teacherAttnMs: null,
          teacherCrossMs: null,
          teacherRestMs: null,
          studentAttnMs: null,
          studentMambaMs: null,
          studentCrossMs: null,
          studentRestMs: null,
          teacherWeightsMB: round(weightBytes(teacher) / MiB, 1),
          studentWeightsMB: round(weightBytes(student) / MiB, 1),
          teacherRuns: [],
          studentRuns: [],
        };
        try {
          // Each model is measured with the other's weights resident (excluded from its device peak) but
          // not its caches: the other model's positional embedding at this grid (one [1, T, D] tensor,
          // 142 MiB at 32,400 tokens) would count against this model's peak.
          student.releaseCaches();
          const tp = await checked(() => measureModel(teacher, T, N, T + N, runs));
          const teacherDevice = devicePeakMB(weightBytes(student));
          Object.assign(row, {
            teacherMs: round(tp.ms),
            teacherRuns: tp.runs.map((x) => round(x)),
            teacherMB: round(tp.mb, 1),
            teacherAttnMs: round(tp.attnMs),
            teacherCrossMs: round(tp.crossMs),
            teacherRestMs: round(tp.ms - tp.attnMs - tp.mambaMs - tp.crossMs),
            ...(teacherDevice != null ? { teacherDeviceMB: teacherDevice } : {}),
          });
          opts.log(
            `  teacher ${tp.ms.toFixed(2)} ms (attention ${tp.attnMs.toFixed(2)}, cross ${tp.crossMs.toFixed(2)}), ${tp.mb.toFixed(0)} MiB${teacherDevice != null ? `, device peak ${teacherDevice.toFixed(0)} MiB` : ''}`,
          );
          teacher.releaseCaches();
          const sp = await checked(() => measureModel(student, T, N, T + N, runs));
          const studentDevice = devicePeakMB(weightBytes(teacher));
          Object.assign(row, {
            studentMs: round(sp.ms),
            studentRuns: sp.runs.map((x) => round(x)),
            studentMB: round(sp.mb, 1),
            studentAttnMs: round(sp.attnMs),
            studentMambaMs: round(sp.mambaMs),
            studentCrossMs: round(sp.crossMs),
            studentRestMs: round(sp.ms - sp.attnMs - sp.mambaMs - sp.crossMs),
            ratio: round(tp.ms / sp.ms),
            ...(studentDevice != null ? { studentDeviceMB: studentDevice } : {}),
          });
          opts.log(
            `  student ${sp.ms.toFixed(2)} ms (attention ${sp.attnMs.toFixed(2)}, Mamba ${sp.mambaMs.toFixed(2)}, cross ${sp.crossMs.toFixed(2)}), ${sp.mb.toFixed(0)} MiB${studentDevice != null ? `, device peak ${studentDevice.toFixed(0)} MiB` : ''}; speed-up ${(tp.ms / sp.ms).toFixed(2)}×`,
          );
        } catch (err) {
          failRow(row, err);
          // what the failed model had asked the device for when it failed (failed allocations included)
          const teacherFailed = row.teacherDeviceMB == null;
          const peak = devicePeakMB(weightBytes(teacherFailed ? student : teacher));
          if (peak != null) row[teacherFailed ? 'teacherDeviceMB' : 'studentDeviceMB'] = peak;
          opts.log(`  failed: ${row.error}`);
        }
        rows.push(row);
        opts.onRow?.(row);
      }
    }
  } finally {
    teacher.dispose();
    student.dispose();
  }
  return rows;
}
