import { resolve } from 'node:path';
import { type BackendName, InputError, initBackend } from '@t2md/core';
import { runAttentionBench } from '../bench/attention.js';
import { elementwiseTable, runElementwiseBench } from '../bench/elementwise.js';
import { matmulTable, runMatmulBench } from '../bench/matmul.js';
import type { Log } from '../bench/measure.js';
import {
  BENCHES,
  type BenchName,
  defaultResultsPath,
  describeDevice,
  gitCommit,
  mergeAndWrite,
  newDoc,
  readResults,
} from '../bench/results.js';
import { runScalingBench } from '../bench/scaling.js';
import { runScanBench } from '../bench/scan.js';
import { attentionTable, scalingTable, scanTable, trainTable } from '../bench/table.js';
import { parseBatches, runTrainBench, TRAIN_STEPS, type TrainStepName } from '../bench/train.js';

export interface BenchOptions {
  json?: boolean;
  quick?: boolean;
  out?: string;
  /** train: batch sizes, e.g. '128,512,1024'. */
  batches?: string;
  /** train: timed steps per block. */
  steps?: number;
  /** train: which step (teacher, distill; default both). */
  step?: TrainStepName;
  /** train: commander's `--no-profile` (true unless given). */
  profile?: boolean;
  backend?: 'auto' | BackendName;
}

/** How each section was measured, stored with its rows so the file explains itself. */
const NOTES: Record<BenchName, string[]> = {
  scan: [
    'scan: ms = median wall time of several runs, each ended by reading back one element (includes one readback round trip); f32, batch 1, ngroups 1, dtSoftplus.',
    'scan: gbps = minimum bytes moved (inputs read and outputs written once; forward+backward counts twice) / median ms.',
  ],
  attention: [
    'attention: ms = median wall time of several runs, each ended by reading back one element; f32, batch 1, no mask; fwdTflops counts 4·L²·Dh·heads.',
  ],
  scaling: [
    'scaling: teacherMs/studentMs = median wall ms of one denoising forward (random weights perturbed off the init by N(0, 0.02²)); ratio = teacherMs / studentMs.',
    "scaling: split = every block's token mixers (Attn: SA; Mamba: HM/WM) and cross-attentions timed alone on inputs of the same shape; Rest = forward − those (norms, modulation, MLPs, embedders, final layer, per-op overhead).",
    "scaling: teacherMB/studentMB (MiB) = model weights + inputs + the high-water of live tfjs tensor bytes during one forward (tf.profile peakBytes; buffers a kernel frees itself are not counted). gpuPoolMB (webgpu) = bytes in tfjs-webgpu's buffer pool afterwards (process-wide, both models).",
  ],
  matmul: [
    'matmul: ms = median per call of back-to-back calls synced once (small GEMMs are queued until ~2e11 FLOPs); f32; every T2MD_MATMUL variant in one process; errors are against tfjs matMul on the same inputs.',
  ],
  elementwise: [
    'elementwise: ms = median per launch of loops of back-to-back launches synced once; gbps = (bytes of each input read once + output written once) / ms.',
  ],
  train: [
    'train: msPerStep = median over 3 blocks of (wall ms of `steps` back-to-back training steps, ended by reading the loss back) / steps, after 3 warm-up steps; a step is what t2md train/distill run: dataset batch, noise, forward, backward, global-norm clip, AdamW, EMA. samplesPerSec = batch * 1000 / msPerStep.',
    'train: kernelsPerStep = WebGPU program dispatches of one step; gpuMsPerStep and profile = per-op GPU time of one step from timestamp queries under tf.profile (each program timed in its own pass), shares of that sum.',
  ],
};

type Runner = (o: { quick: boolean; log: Log; opts: BenchOptions }) => Promise<unknown[]>;

const RUNNERS: Record<BenchName, Runner> = {
  train: ({ quick, log, opts }) =>
    runTrainBench({
      quick,
      log,
      ...(opts.batches != null ? { batches: parseBatches(opts.batches) } : {}),
      ...(opts.steps != null ? { steps: opts.steps } : {}),
      ...(opts.profile === false ? { profile: false } : {}),
      ...(opts.step != null ? { which: [opts.step] } : {}),
    }),
  scan: runScanBench,
  attention: runAttentionBench,
  scaling: runScalingBench,
  matmul: runMatmulBench,
  elementwise: runElementwiseBench,
};

const TABLES: Record<BenchName, (rows: never[]) => string> = {
  scan: scanTable,
  attention: attentionTable,
  scaling: scalingTable,
  matmul: matmulTable as (rows: never[]) => string,
  elementwise: elementwiseTable as (rows: never[]) => string,
  train: trainTable as (rows: never[]) => string,
};

/**
 * `t2md bench scan|attention|scaling|matmul|elementwise`: runs one benchmark on the chosen backend, prints a table (or,
 * with --json, one JSON document) on stdout, progress on stderr, and merges its section into the
 * results file (`--out`, default `bench/results/<date>-<card>.json`). Software backends get the quick
 * sizes even without --quick: the full sizes are for a real GPU.
 */
export async function benchCommand(which: string, opts: BenchOptions = {}): Promise<void> {
  if (!(BENCHES as readonly string[]).includes(which)) {
    throw new InputError(`unknown benchmark '${which}'; choose one of ${BENCHES.join(', ')} (e.g. t2md bench scan --quick).`);
  }
  const name = which as BenchName;
  const log: Log = (line) => process.stderr.write(`${line}\n`);
  if (opts.out != null) readResults(opts.out); // fail now, not after minutes of measuring
  if (opts.batches != null) parseBatches(opts.batches);
  if (opts.step != null && !(TRAIN_STEPS as readonly string[]).includes(opts.step)) {
    throw new InputError(`--step must be one of ${TRAIN_STEPS.join(', ')}, got '${opts.step}'.`);
  }
  const info = await initBackend({ backend: opts.backend ?? 'auto' });
  const dev = describeDevice(info);
  let quick = opts.quick === true;
  let note: string | undefined;
  if (!quick && info.software) {
    quick = true;
    note = `${dev.device} is a software backend: the full sizes need a real GPU, so the --quick sizes were used.`;
    log(`note: ${note}`);
  }
  const path = opts.out ?? defaultResultsPath(dev.card, quick);
  readResults(path);
  log(`bench ${name} on ${dev.device}${quick ? ', quick sizes' : ''}`);
  const t0 = performance.now();
  const rows = await RUNNERS[name]({ quick, log, opts });
  log(`bench ${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const meta = { date: new Date().toISOString(), commit: gitCommit(), backend: info.backend, quick, ...(note ? { note } : {}) };
  const doc = newDoc(dev, name, rows, meta, NOTES[name]);
  const { warning } = mergeAndWrite(path, doc, name);
  if (warning) log(`warning: ${warning}`);
  log(`wrote ${path}`);
  if (opts.json) process.stdout.write(`${JSON.stringify({ ...doc, file: resolve(path) }, null, 2)}\n`);
  else process.stdout.write(`${TABLES[name](rows as never[])}\n`);
  if (rows.length > 0 && rows.every((r) => (r as { error?: string }).error != null)) {
    throw new Error(`every ${name} measurement failed (see ${path}).`);
  }
}
