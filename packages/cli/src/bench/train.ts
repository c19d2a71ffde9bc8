/**
 * `t2md bench train`: training throughput of the two steps the pipeline spends its time in, exactly as
 * `t2md train` / `t2md distill` run them (`createTrainStep` of @t2md/distill, fed by the shapes dataset):
 * - `teacher`: the teacher DiT and caption encoder, ε-MSE, all weights trained;
 * - `distill`: the frozen teacher's forward with taps, then the hybrid student's forward and backward
 *   with L_mse + λ1 L_pseudo + λ2 L_mixer, token mixers trained.
 * `recompute` runs the chosen steps with activation recomputation (StageConfig.recompute).
 * At each batch size: ms per step and samples/s (data, noise, forward, backward, clip, AdamW and EMA:
 * the whole step), the GPU dispatches per step, and on WebGPU a per-op GPU-time profile of one step
 * from timestamp queries (tf.profile), whose top ops say where the step's time goes.
 */
import { InputError, Rng, releaseFreeBuffers } from '@t2md/core';
import {
  createTrainStep,
  disposeStepResult,
  type StageConfig,
  type StageModels,
  shapesPreset,
  type TextEncoderLike,
  type TrainPreset,
  tinyPreset,
} from '@t2md/distill';
import { createDiT, type DiT, transferFromTeacher } from '@t2md/dit';
import { alphasCumprod } from '@t2md/sampler';
import { createCaptionEncoder, createDataset, VOCAB_SIZE } from '@t2md/shapes';
import * as tf from '@tensorflow/tfjs-core';
import { parseChoiceList } from '../options.js';
import { checked, devicePeakMB, failRow, type Log, median, type OnRow, round } from './measure.js';
import { type OpTime, profileOps } from './profile.js';

export type { OpTime } from './profile.js';

export const TRAIN_STEPS = ['teacher', 'distill'] as const;
export type TrainStepName = (typeof TRAIN_STEPS)[number];

export interface TrainRow {
  step: TrainStepName;
  batch: number;
  impl: 't2md';
  /** The preset whose models and stage config were stepped. */
  preset: string;
  msPerStep: number | null;
  samplesPerSec: number | null;
  /** WebGPU program dispatches per step (null off WebGPU). */
  kernelsPerStep: number | null;
  /**
   * Host (JavaScript) ms per step over the timed blocks: the whole step's enqueueing, and the data
   * source's share of it. When hostMsPerStep is close to msPerStep the step is bound by the host.
   */
  hostMsPerStep?: number;
  dataMsPerStep?: number;
  /** Timed steps per block; msPerStep is the median block's mean. */
  steps: number;
  blocksMs: number[];
  /** True when the step ran with activation recomputation (StageConfig.recompute, `--recompute`). */
  recompute?: boolean;
  /** Summed GPU time of one profiled step (timestamp queries), and the ops that took most of it. */
  gpuMsPerStep?: number;
  profile?: OpTime[];
  /** The 15 costliest (op, output shape) pairs of the profiled step. */
  profileDetail?: OpTime[];
  /**
   * WebGPU only: the device-true peak of the point in MiB (measure.ts `devicePeakMB`): the models, the
   * optimiser state, a step's activations, tfjs's pool, uniforms and staging buffers.
   */
  devicePeakMB?: number;
  error?: string;
}

export interface TrainBenchOptions {
  quick: boolean;
  log: Log;
  /** Batch sizes (default 128, 512, 1024; quick: 4). */
  batches?: number[];
  /** Timed steps per block (three blocks; default 10, quick 2). */
  steps?: number;
  /** Profile one step per point (default: on WebGPU). */
  profile?: boolean;
  /** Which steps (default both). */
  which?: readonly TrainStepName[];
  /** The steps run with activation recomputation (StageConfig.recompute; default none). */
  recompute?: readonly TrainStepName[];
  onRow?: OnRow;
}

/** A step list from the CLI (`--recompute distill`; `--recompute` alone: every step). */
export function parseTrainSteps(flag: string, raw: string | true): TrainStepName[] {
  return raw === true ? [...TRAIN_STEPS] : parseChoiceList(flag, raw, 'train steps', TRAIN_STEPS);
}

/** A batch-size list from the CLI (`--batches 128,512`). */
export function parseBatches(raw: string): number[] {
  const xs = raw.split(',').map((s) => Number(s.trim()));
  if (xs.length === 0 || !xs.every((n) => Number.isSafeInteger(n) && n >= 1 && n <= 65_536)) {
    throw new InputError(`--batches must be batch sizes separated by commas (e.g. 128,512,1024), got '${raw}'.`);
  }
  return xs;
}

/** Everything one (step, batch) point needs, freed by `dispose`. */
interface Point {
  run: (rng: Rng) => Promise<void>;
  /** Host ms spent so far in the data source and in whole calls of `run` (enqueueing, not waiting). */
  readonly host: { dataMs: number; stepMs: number; steps: number };
  /** Reads the last step's loss back (ends a timed block: GPU queues run in order). */
  sync: () => Promise<number>;
  dispose: () => void;
}

function encoderFor(p: TrainPreset): TextEncoderLike {
  return createCaptionEncoder({ vocabSize: VOCAB_SIZE, maxLength: p.captionTokens, ...p.textEncoder, seed: p.seed });
}

function makePoint(
  which: TrainStepName,
  preset: TrainPreset,
  batch: number,
  teacher: DiT,
  encoder: TextEncoderLike,
  recompute: boolean,
): Point {
  const stage = which === 'teacher' ? 'teacher' : 'distill';
  const cfg: StageConfig = { ...preset.stages[stage], batchSize: batch, ...(recompute ? { recompute: true } : {}) };
  const resolution = typeof cfg.resolution === 'number' ? cfg.resolution : cfg.resolution[0]!.size;
  let student: DiT | undefined;
  let models: StageModels;
  if (which === 'teacher') {
    models = { model: teacher, encoder };
  } else {
    student = createDiT(preset.student);
    transferFromTeacher(student, teacher);
    models = { model: student, encoder, teacher };
  }
  // the preset's teacher parametrisation (the student's inherits it); v only adds the target's two multiplies
  const prediction = preset.stages.teacher.prediction ?? 'epsilon';
  const stepper = createTrainStep({ stage, cfg, models, alphasCumprod: alphasCumprod(preset.schedule), prediction });
  const data = createDataset({ seed: preset.dataSeed, resolution, batchSize: batch, maxTokens: preset.captionTokens });
  let last: ReturnType<typeof stepper.step> | undefined;
  const host = { dataMs: 0, stepMs: 0, steps: 0 };
  return {
    host,
    async run(rng) {
      const t0 = performance.now();
      const b = data.next();
      const t1 = performance.now();
      const res = stepper.step(b, rng, cfg.lr);
      if (last) disposeStepResult(last);
      last = res;
      host.dataMs += t1 - t0;
      host.stepMs += performance.now() - t0;
      host.steps += 1;
    },
    async sync() {
      return last ? (await last.loss.data())[0]! : Number.NaN;
    },
    dispose() {
      if (last) disposeStepResult(last);
      stepper.dispose();
      student?.dispose();
    },
  };
}

/** Counts WebGPU program dispatches while `fn` runs (tfjs-webgpu's `runWebGPUProgram`; null elsewhere). */
async function countDispatches(fn: () => Promise<void>): Promise<number | null> {
  const backend = tf.backend() as unknown as { runWebGPUProgram?: (...a: unknown[]) => unknown };
  if (tf.getBackend() !== 'webgpu' || typeof backend.runWebGPUProgram !== 'function') {
    await fn();
    return null;
  }
  const original = backend.runWebGPUProgram;
  let n = 0;
  backend.runWebGPUProgram = function (this: unknown, ...args: unknown[]) {
    n += 1;
    return original.apply(this, args);
  };
  try {
    await fn();
  } finally {
    backend.runWebGPUProgram = original;
  }
  return n;
}

/** Per-op time of one step from tf.profile (timestamp queries on WebGPU). */
async function profileStep(point: Point, rng: Rng): Promise<{ total: number; ops: OpTime[]; detail: OpTime[] }> {
  return profileOps(async () => {
    await point.run(rng);
    await point.sync();
  });
}

export async function runTrainBench(o: TrainBenchOptions): Promise<TrainRow[]> {
  const preset = o.quick ? tinyPreset : shapesPreset;
  const batches = o.batches ?? (o.quick ? [4] : [128, 512, 1024]);
  const steps = o.steps ?? (o.quick ? 2 : 10);
  const which = o.which ?? TRAIN_STEPS;
  const profile = o.profile ?? tf.getBackend() === 'webgpu';
  const recompute = new Set(o.recompute ?? []);
  const teacher = createDiT(preset.teacher);
  const encoder = encoderFor(preset);
  const rows: TrainRow[] = [];
  try {
    for (const step of which) {
      for (const batch of batches) {
        const row: TrainRow = {
          step,
          batch,
          impl: 't2md',
          preset: preset.name,
          msPerStep: null,
          samplesPerSec: null,
          kernelsPerStep: null,
          steps,
          blocksMs: [],
          ...(recompute.has(step) ? { recompute: true } : {}),
        };
        let point: Point | undefined;
        try {
          // a failed allocation or an invalid shader leaves its kernels undone (and the step "fast"):
          // `checked` makes such a point an error, not a measurement
          await checked(async () => {
            point = makePoint(step, preset, batch, teacher, encoder, recompute.has(step));
            const p = point;
            const rng = new Rng(0);
            // Warm-up: the first steps compile every pipeline and fill tfjs's buffer pool.
            for (let i = 0; i < 2; i++) await p.run(rng);
            await p.sync();
            row.kernelsPerStep = await countDispatches(async () => {
              await p.run(rng);
              await p.sync();
            });
            const h0 = { ...p.host };
            for (let blk = 0; blk < 3; blk++) {
              const t0 = performance.now();
              for (let i = 0; i < steps; i++) await p.run(rng);
              const loss = await p.sync();
              if (!Number.isFinite(loss)) throw new Error(`the ${step} loss is ${loss} at batch ${batch}`);
              row.blocksMs.push(round((performance.now() - t0) / steps));
            }
            row.msPerStep = median(row.blocksMs);
            const n = p.host.steps - h0.steps;
            row.hostMsPerStep = round((p.host.stepMs - h0.stepMs) / n);
            row.dataMsPerStep = round((p.host.dataMs - h0.dataMs) / n);
            row.samplesPerSec = round((1000 * batch) / row.msPerStep, 1);
            if (profile) {
              const prof = await profileStep(p, rng);
              row.gpuMsPerStep = prof.total;
              row.profile = prof.ops;
              row.profileDetail = prof.detail;
            }
          });
          const msPerStep = row.msPerStep as number;
          o.log(
            `train ${step}${row.recompute ? ' (recompute)' : ''} batch ${batch}: ${msPerStep.toFixed(1)} ms/step (host ${row.hostMsPerStep?.toFixed(1)}, data ${row.dataMsPerStep?.toFixed(1)}), ${row.samplesPerSec} samples/s, ${row.kernelsPerStep ?? '—'} dispatches${row.gpuMsPerStep != null ? `, ${row.gpuMsPerStep.toFixed(1)} ms GPU` : ''}`,
          );
        } catch (err) {
          failRow(row, err);
          o.log(`train ${step} batch ${batch}: ${row.error}`);
        } finally {
          const peak = devicePeakMB();
          if (peak != null) row.devicePeakMB = peak;
          (point as Point | undefined)?.dispose();
          // the next point's tensors have other sizes: free this point's pooled buffers (after a readback)
          await tf.ready();
          releaseFreeBuffers();
        }
        rows.push(row);
        o.onRow?.(row);
      }
    }
  } finally {
    teacher.dispose();
    encoder.dispose();
  }
  return rows;
}
