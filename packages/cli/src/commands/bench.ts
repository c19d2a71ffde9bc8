import { resolve } from 'node:path';
import {
  type BackendName,
  dawnFlagsInUse,
  deferredFreeLimit,
  GEMM_DEFAULTS,
  InputError,
  initBackend,
  poolLimit,
  quietWebGPUErrors,
  wasmBuild,
} from '@t2md/core';
import { ssdDefaultGemmTile, ssdDefaultVariant } from '@t2md/ssm';
import * as tf from '@tensorflow/tfjs-core';
import { runAttentionBench } from '../bench/attention.js';
import { elementwiseTable, runElementwiseBench } from '../bench/elementwise.js';
import { matmulTable, runMatmulBench } from '../bench/matmul.js';
import { type Log, parseSizes, type RunnerOptions } from '../bench/measure.js';
import {
  BENCHES,
  type BenchDoc,
  type BenchName,
  defaultResultsPath,
  describeDevice,
  newDoc,
  readResults,
  repoRoot,
  resolveSource,
  SECTIONS,
  type SectionMeta,
  sectionWriter,
} from '../bench/results.js';
import { parseModels, runSampleBench } from '../bench/sample.js';
import { runScalingBench } from '../bench/scaling.js';
import { parseTiles, runScanBench } from '../bench/scan.js';
import { attentionTable, sampleTable, scalingTable, scanTable, trainTable } from '../bench/table.js';
import { parseBatches, parseTrainSteps, runTrainBench, TRAIN_STEPS, type TrainStepName } from '../bench/train.js';
import { runContext } from '../context.js';
import { PointsFailedError } from '../errors.js';
import { checkOutFile } from '../out-path.js';
import { packageVersions } from '../versions.js';

export interface BenchOptions {
  json?: boolean;
  quick?: boolean;
  out?: string;
  /** train: batch sizes, e.g. '128,512,1024'; scaling: batch sizes (default 1,2); sample: image counts. */
  batches?: string;
  /** train: timed steps per block; sample: timed sampling steps per point. */
  steps?: number;
  /** sample: models (teacher, student or files), comma-separated. */
  model?: string;
  /** train: which step (teacher, distill; default both). */
  step?: TrainStepName;
  /** train: `--recompute [steps]`: the steps run with activation recomputation (no value: both). */
  recompute?: string | true;
  /** train, scan: commander's `--no-profile` (true unless given). */
  profile?: boolean;
  /** Measure a tree that differs from its commit; the rows record `dirty: true`. */
  allowDirty?: boolean;
  /** Sequence lengths / token counts / elements, comma-separated (the bench's sweep otherwise). */
  sizes?: string;
  /** scan: ssdScan's GEMM micro-tiles to time on WebGPU, comma-separated or 'all' (default: the default tile). */
  tiles?: string;
  backend?: 'auto' | BackendName;
}

/**
 * Dawn flags for every bench: GPU timestamps unquantised, so a profile's short passes read their real
 * time instead of multiples of 65.536 µs (or 0). Applied when initBackend installs Dawn; bench/gpu.ts
 * creates Dawn itself with the same default.
 */
export const BENCH_DAWN_FLAGS: readonly string[] = ['disable-dawn-features=timestamp_quantization'];

/** Every section on WebGPU: what `devicePeakMB` (and scaling's teacherDeviceMB/studentDeviceMB) count, and how a point fails. */
const DEVICE_NOTES: string[] = [
  "devicePeakMB (webgpu, MiB) = the most bytes tfjs-webgpu had allocated from the device at once during the point: tensors, tfjs's pool of released buffers (it never frees them by itself; the bench releases it before every point), uniform and staging buffers. Not counted: Dawn's own staging for queue.writeBuffer, query sets, pipelines, the driver's allocation rounding.",
  'A point during which WebGPU reported an error (validation, out of memory, device lost) failed: its row holds the error and no timing.',
];

/** How each section was measured, stored with its rows so the file explains itself. */
const NOTES: Record<BenchName, string[]> = {
  scan: [
    'scan: ms = median wall time per call of several runs of `reps` queued calls, each run ended by reading back one element (includes one readback round trip); the kernel and the tfjs-ops reference alike; f32, batch 1, ngroups 1, dtSoftplus. gpuMs/passes: one more call under tf.time (GPU timestamps, quantisation off).',
    'scan: gbps = minimum bytes moved (inputs read and outputs written once; forward+backward counts twice) / median ms.',
    "scan: variant and gemmTile = ssdScan's WebGPU forward and the micro-tile of every GEMM pass (forward and backward) the row ran; the tiles timed are --tiles' (default: the default tile alone).",
  ],
  attention: [
    'attention: ms = median wall time of several runs, each ended by reading back one element; f32, batch 1, no mask; fwdTflops counts 4·L²·Dh·heads.',
  ],
  scaling: [
    'scaling: teacherMs/studentMs = median wall ms of one denoising forward (random weights perturbed off the init by N(0, 0.02²)); ratio = teacherMs / studentMs.',
    "scaling: split = every block's token mixers (Attn: SA; Mamba: HM/WM) and cross-attentions timed alone on inputs of the same shape; Rest = forward − those (norms, modulation, MLPs, embedders, final layer, per-op overhead).",
    'scaling: teacherMB/studentMB (MiB) = model weights + inputs + the high-water of live tfjs tensor bytes during one forward (tf.profile peakBytes; buffers a kernel frees itself are not counted).',
    "scaling: teacherDeviceMB/studentDeviceMB (webgpu, MiB) = the device-true peak while that model was measured (forwards and split), less the other model's weights (resident: the bench holds both).",
  ],
  matmul: [
    'matmul: ms = median per call of back-to-back calls synced once (small GEMMs are queued until ~2e11 FLOPs); f32; every variant (tfjs, t128, t64; unroll 16 and 4) in one process, samples interleaved, tfjs timed exactly like ours; errors are against tfjs matMul on the same inputs.',
  ],
  elementwise: [
    'elementwise: ms = median per launch of loops of back-to-back launches synced once, tfjs ops and ours alike; gbps = (bytes of each input read once + output written once) / ms. tf.add(x, 1) builds and uploads the scalar on each call, tf.add(x, c) takes a prebuilt one.',
  ],
  train: [
    'train: msPerStep = median over 3 blocks of (wall ms of `steps` back-to-back training steps, ended by reading the loss back) / steps, after 3 warm-up steps; a step is what t2md train/distill run: dataset batch, noise, forward, backward, global-norm clip, AdamW, EMA. samplesPerSec = batch * 1000 / msPerStep.',
    'train: kernelsPerStep = WebGPU program dispatches of one step; gpuMsPerStep and profile = per-op GPU time of one step from timestamp queries under tf.profile (each program timed in its own pass), shares of that sum.',
  ],
  sample: [
    'sample: msPerStep = median wall ms of the timed steps of one `generate` call (DPM-Solver++, guidance 4.5: one model call on 2·batch rows per step), after one warm-up step, each step ended by reading its clean-image estimate back; msPerImageStep = msPerStep / batch.',
    "sample: gflopPerImageStep = model FLOPs of one guided step per image, counted from the config (2 per multiply-add: every linear layer, attention q·kᵀ and p·v, the SSD scan as its recurrence at 4·P·N per token and head); gflops = that / msPerStep; matmulGflops = tf.matMul on the model's linear-layer shapes at this batch, same process (median of 3 calls per shape after one, FLOP-weighted); shareOfMatmul = gflops / matmulGflops.",
    'sample: profile = tf.profile of one guided model call (GPU timestamps on webgpu; on wasm and cpu the wall time of each kernel, which runs synchronously).',
  ],
};

type Runner = (o: RunnerOptions & { opts: BenchOptions }) => Promise<unknown[]>;

const RUNNERS: Record<BenchName, Runner> = {
  train: ({ quick, log, onRow, opts }) =>
    runTrainBench({
      quick,
      log,
      ...(onRow ? { onRow } : {}),
      ...(opts.batches != null ? { batches: parseBatches(opts.batches) } : {}),
      ...(opts.steps != null ? { steps: opts.steps } : {}),
      ...(opts.profile === false ? { profile: false } : {}),
      ...(opts.step != null ? { which: [opts.step] } : {}),
      ...(opts.recompute != null ? { recompute: parseTrainSteps('--recompute', opts.recompute) } : {}),
    }),
  sample: ({ quick, log, onRow, opts }) =>
    runSampleBench({
      log,
      ...(onRow ? { onRow } : {}),
      models: parseModels(opts.model ?? 'teacher,student'),
      batches: opts.batches != null ? parseBatches(opts.batches) : quick ? [1, 4] : [1, 4, 16],
      steps: opts.steps ?? (quick ? 2 : 3),
      profile: opts.profile !== false,
    }),
  scan: ({ opts, ...o }) => runScanBench({ ...o, ...(opts.tiles != null ? { tiles: parseTiles(opts.tiles) } : {}) }),
  attention: runAttentionBench,
  scaling: ({ opts, ...o }) => runScalingBench({ ...o, ...(opts.batches != null ? { batches: parseBatches(opts.batches) } : {}) }),
  matmul: runMatmulBench,
  elementwise: runElementwiseBench,
};

/**
 * The GEMM that benches running `linear` use: gemm's defaults (variant auto, full unroll), since
 * `linear` takes no GEMM options (the matmul bench records its own per row).
 */
const gemmSettings = () => ({ gemm: { ...GEMM_DEFAULTS } });

/** On wasm: which build ran on how many threads (`wasmBuild`). */
const wasmSettings = () => {
  const w = wasmBuild();
  return w != null && tf.getBackend() === 'wasm' ? { wasm: { build: w.build, threads: w.threads } } : {};
};

/**
 * On WebGPU, for every section: the early submit's limit (`setDeferredFreeLimit`, `T2MD_DEFERRED_FREE_MB`)
 * in MiB, or 'off': it moves the device peak of long sequences and large batches, and the submits per step;
 * the pool limit and the SSD forward variant and GEMM tile when they are not the defaults.
 */
const deferredSettings = () => {
  if (tf.getBackend() !== 'webgpu') return {};
  const l = deferredFreeLimit();
  const pool = poolLimit();
  // the pool limit (setPoolLimit, T2MD_POOL_MB) moves the device peak too; recorded only when one is set
  // likewise the SSD scan's forward when T2MD_SSD_VARIANT picks another than the default, and its GEMM
  // tile when T2MD_SSD_GEMM_TILE does (the scan bench's rows name theirs)
  const ssd = ssdDefaultVariant();
  const tile = ssdDefaultGemmTile();
  return {
    deferredFreeMB: Number.isFinite(l) ? l / 2 ** 20 : 'off',
    ...(Number.isFinite(pool) ? { poolMB: pool / 2 ** 20 } : {}),
    ...(ssd !== 'chunked' ? { ssdVariant: ssd } : {}),
    ...(tile !== '4x4' ? { ssdGemmTile: tile } : {}),
  };
};

/**
 * Settings of each bench that change its numbers and that the commit does not fix (what its rows do
 * not already say), recorded in every row's `run.settings`.
 */
const SETTINGS: Record<BenchName, (opts: BenchOptions) => Record<string, unknown>> = {
  scan: (o) => ({ profile: o.profile !== false }),
  attention: () => ({}),
  scaling: () => gemmSettings(),
  matmul: () => ({}),
  elementwise: () => ({}),
  train: (o) => ({ ...gemmSettings(), profile: o.profile !== false }),
  sample: (o) => ({ ...gemmSettings(), ...wasmSettings(), profile: o.profile !== false }),
};

const TABLES: Record<BenchName, (rows: never[]) => string> = {
  scan: scanTable,
  attention: attentionTable,
  scaling: scalingTable,
  matmul: matmulTable as (rows: never[]) => string,
  elementwise: elementwiseTable as (rows: never[]) => string,
  train: trainTable as (rows: never[]) => string,
  sample: sampleTable as (rows: never[]) => string,
};

/**
 * `t2md bench scan|attention|scaling|matmul|elementwise|train|sample`: runs one benchmark on the chosen backend,
 * prints a table (or, with --json, one JSON document) on stdout, progress on stderr, and merges its
 * section into the results file: `--out`, else `bench/results/<date>-<card>.json` when run inside this
 * repository (outside it, without --out, nothing is written). The file is rewritten, atomically, after
 * every point with `runs.<section>.complete: false`, and once more at the end with `true`: a run
 * stopped by a timeout or a signal leaves the points it finished. Every row records the commit (a dirty
 * tree is refused unless --allow-dirty), the card, driver, Dawn version and flags, and the settings.
 * Software backends get the quick sizes even without --quick (the full sizes are for a real GPU),
 * except `sample`, whose full sizes (1, 4 and 16 images) are what a CPU user draws.
 */
export async function benchCommand(which: string, opts: BenchOptions = {}): Promise<void> {
  if (!(BENCHES as readonly string[]).includes(which)) {
    throw new InputError(`unknown benchmark '${which}'; choose one of ${BENCHES.join(', ')} (e.g. t2md bench scan --quick).`);
  }
  const name = which as BenchName;
  const log: Log = (line) => process.stderr.write(`${line}\n`);
  // every check that can fail does so now, not after minutes of measuring
  if (opts.out != null) {
    checkOutFile('--out', opts.out);
    readResults(opts.out);
  }
  if (opts.batches != null) parseBatches(opts.batches);
  if (opts.tiles != null) parseTiles(opts.tiles);
  if (opts.model != null) parseModels(opts.model);
  if (opts.recompute != null) parseTrainSteps('--recompute', opts.recompute);
  if (opts.step != null && !(TRAIN_STEPS as readonly string[]).includes(opts.step)) {
    throw new InputError(`--step must be one of ${TRAIN_STEPS.join(', ')}, got '${opts.step}'.`);
  }
  const sizes = opts.sizes != null ? parseSizes(opts.sizes) : undefined;
  const ctx = runContext();
  const source = resolveSource(ctx, opts.allowDirty === true);
  const info = await initBackend({ backend: opts.backend ?? 'auto', dawnFlags: BENCH_DAWN_FLAGS });
  // each point reports its WebGPU errors in its row and the summary below; Dawn would also print every
  // one on stdout (thousands when out of memory), burying that line and breaking --json
  quietWebGPUErrors(true);
  const dev = describeDevice(info);
  let quick = opts.quick === true;
  let note: string | undefined;
  // sampling on the CPU is what `bench sample` is for: its full sizes run everywhere
  if (!quick && info.software && name !== 'sample') {
    quick = true;
    note = `${dev.device} is a software backend: the full sizes need a real GPU, so the --quick sizes were used.`;
    log(`note: ${note}`);
  }
  const root = repoRoot();
  const path = opts.out ?? (root != null ? defaultResultsPath(dev.card, quick, new Date(), root) : null);
  if (path != null && opts.out == null) {
    checkOutFile('the results file', path);
    readResults(path);
  }
  const dawnFlags = dawnFlagsInUse() ?? ctx.dawnFlags;
  const webgpuVersion = ctx.dawn ?? packageVersions().webgpu;
  const settings = { ...SETTINGS[name](opts), ...deferredSettings() };
  const notes = info.backend === 'webgpu' ? [...NOTES[name], ...DEVICE_NOTES] : NOTES[name];
  // the section as it stands, dated now: rewritten after every point (complete: false), then at the end
  const write = path != null ? sectionWriter(path, name) : null;
  let warned = false;
  const save = (rows: readonly unknown[], complete: boolean): BenchDoc => {
    const meta: SectionMeta = {
      date: new Date().toISOString(),
      commit: source.commit,
      ...(source.dirty ? { dirty: true } : {}),
      backend: info.backend,
      quick,
      ...(note ? { note } : {}),
      ...(info.backend === 'webgpu' ? { dawn: webgpuVersion ? `webgpu@${webgpuVersion}` : null, ...(dawnFlags ? { dawnFlags } : {}) } : {}),
      settings,
      complete,
    };
    const doc = newDoc(dev, name, rows, meta, notes);
    const warning = write?.(doc).warning;
    if (warning != null && !warned) {
      warned = true; // every write of the run would say it
      log(`warning: ${warning}`);
    }
    return doc;
  };
  log(
    `bench ${name} on ${dev.device}${quick ? ', quick sizes' : ''} at ${source.commit?.slice(0, 10) ?? 'no commit'}${source.dirty ? ' (dirty)' : ''}`,
  );
  const t0 = performance.now();
  const done: unknown[] = [];
  const onRow = (row: object) => {
    done.push(row);
    save(done, false);
  };
  const rows = await RUNNERS[name]({ quick, log, onRow, opts, ...(sizes ? { sizes } : {}), profile: opts.profile !== false });
  log(`bench ${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const doc = save(rows, true);
  if (path != null) {
    log(`wrote ${path}`);
  } else {
    log('not inside the T2MD repository and no --out given: the results were not written (pass --out FILE to keep them).');
  }
  if (opts.json) process.stdout.write(`${JSON.stringify({ ...doc, file: path == null ? null : resolve(path) }, null, 2)}\n`);
  else process.stdout.write(`${TABLES[name](rows as never[])}\n`);
  const failed = (rows as Record<string, unknown>[]).filter((r) => r.error != null);
  if (failed.length > 0) {
    const first = failed[0]!;
    const keys = SECTIONS.find((s) => s.name === name)!.keys.filter((k) => first[k] != null);
    const where = keys.map((k) => `${k} ${first[k]}`).join(', ');
    throw new PointsFailedError(
      `bench ${name}: ${failed.length} of ${rows.length} point(s) failed, the first (${where}) with: ${String(first.error)}; failed rows hold the error and no timing${path != null ? ` (${path})` : ''}.`,
    );
  }
}
