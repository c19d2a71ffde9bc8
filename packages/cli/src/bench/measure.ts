/**
 * Timing helpers shared by the benchmarks: wall-clock runs synced by reading back one element, medians,
 * seeded inputs and relative errors. Everything here works the same on webgpu, wasm and cpu.
 */
import {
  deviceMemory,
  InputError,
  Rng,
  releaseFreeBuffers,
  resetDevicePeak,
  takeWebGPUErrors,
  webgpuDeviceLost,
  webgpuIdle,
} from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { timingsOf } from './results.js';

/** Where progress lines go (stderr in the CLI, so stdout stays one JSON document with --json). */
export type Log = (line: string) => void;

/**
 * Waits until `t` (and, GPU queues being in order, everything queued before it) has been computed, by
 * reading back its last element: one small readback instead of the whole tensor.
 */
export async function sync(t: tf.Tensor): Promise<void> {
  const one = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [t.size - 1], [1]));
  await one.data();
  one.dispose();
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface TimeOptions {
  /** Timed runs wanted. */
  runs: number;
  /** Untimed runs first (the first run compiles pipelines and fills the buffer pool). Default 1. */
  warmup?: number;
  /** Stop timing once this many ms were spent, keeping at least `minRuns` (for the slow large sizes). */
  budgetMs?: number;
  /** Default 2. */
  minRuns?: number;
  /**
   * Calls per timed run, queued back to back and synced once; the run's ms is divided by it. One
   * readback round trip costs ~2 ms on the H100 machine (seen: ssdScan 5.9 ms wall against 3.4 ms of
   * GPU time), as much as the op itself, so ops of a few ms are timed over several calls. Default 1.
   */
  reps?: number;
}

/**
 * Wall-clock ms of each timed call of `fn`, each run ended by `sync` on its first output; the outputs
 * are freed after every run. Includes one readback round trip per run (about 0.1-1 ms on a GPU).
 */
export async function timeRuns(fn: () => tf.Tensor | tf.Tensor[], opts: TimeOptions): Promise<number[]> {
  const reps = Math.max(1, opts.reps ?? 1);
  const once = async (): Promise<number> => {
    const t0 = performance.now();
    // GPU queues run in order: the last call's readback waits for every call before it
    for (let i = 1; i < reps; i++) tf.dispose(fn());
    const out = fn();
    const outs = Array.isArray(out) ? out : [out];
    await sync(outs[0]!);
    const ms = (performance.now() - t0) / reps;
    tf.dispose(outs);
    return ms;
  };
  for (let i = 0; i < (opts.warmup ?? 1); i++) await once();
  const ms: number[] = [];
  const start = performance.now();
  const minRuns = Math.min(opts.minRuns ?? 2, opts.runs);
  while (ms.length < opts.runs) {
    ms.push(await once());
    if (opts.budgetMs != null && ms.length >= minRuns && performance.now() - start > opts.budgetMs) break;
  }
  return ms;
}

/**
 * Like `timeRuns` for several implementations of one computation, their samples interleaved: every
 * implementation is warmed up, then each round times one sample of each in turn, so a drift of the
 * GPU's clocks or of the buffer pool over the process touches all of them alike (a baseline timed in
 * another process, or before ours, can differ by 2-3x: seen for tfjs matMul on the H100, 2026-11-26).
 * Returns ms per call of each.
 */
export async function timeInterleaved(fns: readonly (() => tf.Tensor | tf.Tensor[])[], opts: TimeOptions): Promise<number[][]> {
  const reps = Math.max(1, opts.reps ?? 1);
  const once = async (i: number): Promise<number> => {
    const t0 = performance.now();
    for (let r = 1; r < reps; r++) tf.dispose(fns[i]!());
    const out = fns[i]!();
    const outs = Array.isArray(out) ? out : [out];
    await sync(outs[0]!);
    const ms = (performance.now() - t0) / reps;
    tf.dispose(outs);
    return ms;
  };
  for (let i = 0; i < fns.length; i++) for (let w = 0; w < (opts.warmup ?? 1); w++) await once(i);
  const ms: number[][] = fns.map(() => []);
  const start = performance.now();
  const minRuns = Math.min(opts.minRuns ?? 2, opts.runs);
  for (let round = 0; round < opts.runs; round++) {
    for (let i = 0; i < fns.length; i++) ms[i]!.push(await once(i));
    if (opts.budgetMs != null && round + 1 >= minRuns && performance.now() - start > opts.budgetMs) break;
  }
  return ms;
}

/** A float32 tensor of uniforms in [lo, hi) from a seeded generator (the same numbers on every backend). */
export function uniform(shape: number[], lo: number, hi: number, seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(new Rng(seed).uniforms(n, lo, hi), shape, 'float32');
}

/** A float32 tensor of standard normals times `std` from a seeded generator. */
export function normal(shape: number[], seed: number, std = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Rng(seed).normals(n);
  if (std !== 1) for (let i = 0; i < n; i++) v[i]! *= std;
  return tf.tensor(v, shape, 'float32');
}

/** ‖a − b‖ / ‖b‖ over all elements (read back to the host). */
export async function relErr(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const [x, y] = await Promise.all([a.data(), b.data()]);
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    num += (x[i]! - y[i]!) ** 2;
    den += y[i]! ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

/** A message for a row that could not be measured (out of memory, a buffer over the binding limit). */
export function errorText(err: unknown): string {
  return String((err as Error)?.message ?? err)
    .replace(/\s+/g, ' ')
    .slice(0, 200)
    .trim();
}

/**
 * Marks `row` failed with `err`: its `error` is set and every timing it had taken before the failure
 * is dropped (lists emptied, values nulled), so that it holds an error or timings, never both.
 */
export function failRow<T extends object>(row: T, err: unknown): T {
  const r = row as Record<string, unknown>;
  for (const k of timingsOf(r)) r[k] = Array.isArray(r[k]) ? [] : null;
  r.error = errorText(err);
  return row;
}

/**
 * Runs one benchmark point (or one model of a point) so that it fails loudly. Before: waits for the GPU,
 * returns tfjs's buffer pool to the device (the point before may have
 * used other sizes) and restarts the device peak (`devicePeakMB`). After: submits and waits for
 * everything `fn` queued, then throws when WebGPU reported any error meanwhile. A failed allocation or
 * an invalid shader throws nothing by itself: its kernels (and the rest of their command buffer) are
 * skipped and the point looks fast (seen at 32,400 tokens on the H100: out of device memory, times
 * recorded and charted). The WebGPU error is named before an exception `fn` threw, being its likely cause.
 */
export async function checked<T>(fn: () => Promise<T>): Promise<T> {
  // first, so that a point refused below does not report the point before's peak as its own
  resetDevicePeak();
  const lost = webgpuDeviceLost();
  if (lost != null) throw new Error(`${lost}; every later point fails too`);
  await webgpuIdle();
  // errors of work outside any point (inputs, references made between points) fail this point, not nobody
  const before = takeWebGPUErrors();
  releaseFreeBuffers();
  resetDevicePeak();
  let value: T | undefined;
  let thrown: { err: unknown } | undefined;
  try {
    value = await fn();
  } catch (err) {
    thrown = { err };
  }
  await webgpuIdle();
  const errors = [...before, ...takeWebGPUErrors()];
  if (errors.length > 0) {
    const also = thrown != null ? `; then: ${errorText(thrown.err)}` : '';
    throw new Error(`WebGPU reported ${errors.length} error(s): ${errors[0]}${also}`);
  }
  if (thrown != null) throw thrown.err;
  return value as T;
}

const MiB = 2 ** 20;

/**
 * The device-true peak of the point `checked` ran last, in MiB: the most bytes tfjs-webgpu had
 * allocated from the device at once (tensors, its pool of released buffers, uniforms and staging
 * buffers; see @t2md/core's deviceMemory for what it misses), less `exclude` bytes (e.g. another model's
 * weights that the bench keeps resident). Undefined off WebGPU.
 */
export function devicePeakMB(exclude = 0): number | undefined {
  const m = deviceMemory();
  return m == null ? undefined : round((m.peakBytes - exclude) / MiB, 1);
}

/** Rounds for tables and JSON: timings to µs, rates to 3 significant digits. */
export const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

/**
 * `--sizes` (comma-separated sequence lengths / token counts / elements) as numbers: lets one device
 * call measure a subset when the whole sweep would outlast its time limit. An InputError when malformed.
 */
export function parseSizes(raw: string): number[] {
  const sizes = raw.split(',').map((s) => Number(s.trim()));
  if (raw.trim() === '' || !sizes.every((n) => Number.isSafeInteger(n) && n > 0)) {
    throw new InputError(`--sizes must be positive integers separated by commas (e.g. 4096,16384), got '${raw}'.`);
  }
  return sizes;
}

/**
 * Called with each row, as the bench returns it, as soon as its point is done (failed points too), in
 * order: `t2md bench` rewrites its results file with the rows so far, so that a run stopped mid-section
 * (a timeout, Ctrl-C) keeps the points it measured.
 */
export type OnRow = (row: object) => void;

/** What every benchmark runner gets: the size class, where to log, and `--sizes` when given. */
export interface RunnerOptions {
  quick: boolean;
  log: Log;
  onRow?: OnRow;
  sizes?: readonly number[];
  /** scaling: batch sizes (`--batches`; default 1 and 2). */
  batches?: readonly number[];
  /** Time one more run per row under tf.time for a per-program GPU profile (WebGPU; default true). */
  profile?: boolean;
}

/** `sizes` when given, else the bench's default sweep. */
export const pickSizes = (dflt: readonly number[], sizes?: readonly number[]): number[] => [...(sizes ?? dflt)];
