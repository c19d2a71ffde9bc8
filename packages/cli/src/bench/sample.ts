/**
 * `t2md bench sample`: sampling speed as `t2md sample` runs it (DPM-Solver++ with guidance 4.5, one
 * model call of 2·images rows per step) for the shipped teacher and student, or any model file, at
 * several image counts. Each point reports ms per step and per image-step, the step's GFLOP/s (model
 * FLOPs counted from the config, flops.ts) as a share of the matMul rate measured in the same process
 * on the model's own GEMM shapes, and the same per-op profile table as `bench train` (tf.profile of
 * one guided model call: GPU timestamps on webgpu, wall time per kernel on wasm and cpu).
 */
import { basename, dirname, resolve } from 'node:path';
import { InputError, releaseFreeBuffers } from '@t2md/core';
import { captionedDenoiser } from '@t2md/dit';
import { generate, tokenizeToTensors } from '@t2md/shapes';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel, SHIPPED } from '../models.js';
import { forwardCost, type GemmShape } from './flops.js';
import { checked, devicePeakMB, failRow, type Log, median, type OnRow, round } from './measure.js';
import { type OpTime, profileOps } from './profile.js';

export interface SampleRow {
  /** `teacher`, `student`, or the model file given as its folder and name (`run-7/model.safetensors`). */
  model: string;
  layout: string;
  /** Images drawn at once (the model runs on twice as many rows: guidance). */
  batch: number;
  /** Image side in pixels. */
  size: number;
  /** Timed steps (after one warm-up step). */
  steps: number;
  msPerStep: number | null;
  msPerImageStep: number | null;
  /** Wall ms of each timed step (each ended by reading its clean-image estimate back). */
  stepsMs: number[];
  /** Model FLOPs of one guided step per image (2 rows), in GFLOP. */
  gflopPerImageStep: number;
  /** Model FLOPs per second of the whole step. */
  gflops: number | null;
  /** tf.matMul's rate on the model's linear-layer shapes at this batch, in this process. */
  matmulGflops: number | null;
  /** gflops / matmulGflops. */
  shareOfMatmul: number | null;
  /** Summed kernel time of one profiled model call, and the ops that took most of it. */
  profileMs?: number;
  profile?: OpTime[];
  profileDetail?: OpTime[];
  /** WebGPU only: the device-true peak of the point in MiB (measure.ts `devicePeakMB`). */
  devicePeakMB?: number;
  error?: string;
}

export interface SampleBenchOptions {
  log: Log;
  /** Model names or files (default: the shipped teacher and student). */
  models: readonly string[];
  /** Image counts (default 1, 4, 16). */
  batches: readonly number[];
  /** Timed steps per point (default 3). */
  steps: number;
  /** Profile one model call per point (default true). */
  profile: boolean;
  onRow?: OnRow;
}

/** How a row names its model: a shipped model by name, a file by its folder and name (no machine paths). */
function modelLabel(spec: string): string {
  if ((SHIPPED as readonly string[]).includes(spec)) return spec;
  return [basename(dirname(resolve(spec))), basename(spec)].join('/');
}

/** `--model` of `bench sample`: names or files, separated by commas. */
export function parseModels(raw: string): string[] {
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw new InputError(`--model must name models (teacher, student or files) separated by commas, got '${raw}'.`);
  return names;
}

const PROMPT = 'two red circles left of a blue square';

/** ms per call of `tf.matMul` for each shape (median of 3 after a warm-up), and the FLOP-weighted rate. */
async function matmulRate(gemms: readonly GemmShape[]): Promise<number> {
  let flops = 0;
  let ms = 0;
  for (const g of gemms) {
    const a = tf.randomNormal([g.M, g.K]);
    const b = tf.randomNormal([g.K, g.N]);
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      const c = tf.matMul(a, b);
      await c.data();
      if (i > 0) times.push(performance.now() - t0);
      c.dispose();
    }
    tf.dispose([a, b]);
    flops += 2 * g.M * g.K * g.N * g.count;
    ms += median(times) * g.count;
  }
  return flops / ms / 1e6;
}

/** Times sampling of one model at one image count, profiles one guided model call. */
async function measure(name: string, trained: ReturnType<typeof loadModel>, batch: number, o: SampleBenchOptions): Promise<SampleRow> {
  const { model, encoder, prediction } = trained;
  const grid = model.config.baseGrid ?? [16, 16];
  const size = grid[0] * model.config.patchSize;
  const tokens = grid[0] * grid[1];
  const captionTokens = model.config.captionLength ?? 0;
  const cost = forwardCost(model.config, 2 * batch, tokens, captionTokens);
  const row: SampleRow = {
    model: name,
    layout: model.config.layout,
    batch,
    size,
    steps: o.steps,
    msPerStep: null,
    msPerImageStep: null,
    stepsMs: [],
    gflopPerImageStep: round(cost.flops / batch / 1e9, 4),
    gflops: null,
    matmulGflops: null,
    shareOfMatmul: null,
  };
  try {
    await checked(async () => {
      const stepMs: number[] = [];
      const { images } = await generate({
        model,
        encoder,
        prediction,
        prompt: PROMPT,
        count: batch,
        steps: o.steps + 1,
        onStep: ({ ms }) => void stepMs.push(ms),
      });
      images.dispose();
      row.stepsMs = stepMs.slice(1).map((x) => round(x, 1));
      row.msPerStep = round(median(row.stepsMs), 1);
      row.msPerImageStep = round(row.msPerStep / batch, 1);
      row.gflops = round(cost.flops / row.msPerStep / 1e6, 2);
      row.matmulGflops = round(await matmulRate(cost.gemms), 2);
      row.shareOfMatmul = round(row.gflops / row.matmulGflops, 3);
      if (o.profile) {
        const { tokens: ids, mask } = tokenizeToTensors(Array(batch).fill(PROMPT));
        const feats = tf.tidy(() => encoder.encode(ids, mask));
        const denoiser = captionedDenoiser(model, feats, mask, true);
        tf.dispose([ids, mask, feats]);
        const x = tf.randomNormal([2 * batch, model.config.inChannels, size, size]);
        const t = tf.fill([2 * batch], 500, 'int32');
        try {
          const prof = await profileOps(async () => {
            const eps = denoiser.model(x, t);
            await eps.data();
            eps.dispose();
          });
          row.profileMs = prof.total;
          row.profile = prof.ops;
          row.profileDetail = prof.detail;
        } finally {
          denoiser.dispose();
          tf.dispose([x, t]);
        }
      }
    });
    o.log(
      `sample ${name} batch ${batch}: ${row.msPerStep} ms/step, ${row.msPerImageStep} ms per image-step, ${row.gflops} GFLOP/s = ${(100 * (row.shareOfMatmul ?? 0)).toFixed(0)}% of matMul's ${row.matmulGflops}`,
    );
  } catch (err) {
    failRow(row, err);
    o.log(`sample ${name} batch ${batch}: ${row.error}`);
  } finally {
    const peak = devicePeakMB();
    if (peak != null) row.devicePeakMB = peak;
    await tf.ready();
    releaseFreeBuffers();
  }
  return row;
}

export async function runSampleBench(o: SampleBenchOptions): Promise<SampleRow[]> {
  const rows: SampleRow[] = [];
  for (const name of o.models) {
    const trained = loadModel(name);
    try {
      for (const batch of o.batches) {
        const row = await measure(modelLabel(name), trained, batch, o);
        rows.push(row);
        o.onRow?.(row);
      }
    } finally {
      trained.dispose();
    }
  }
  return rows;
}
