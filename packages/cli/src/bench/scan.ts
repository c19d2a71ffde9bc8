/**
 * `t2md bench scan`: Mamba-2's `ssdScan` forward and forward+backward at the T2MD student's mixer shape
 * (36 heads × 64, d_state 256, one group, batch 1) over chunk sizes, the tfjs-ops reference `ssdScanRef` where its O(L·Q)
 * intermediates fit, and Mamba-1's `selectiveScan` at the same width. On WebGPU every kernel point is
 * timed for each forward variant (`SSD_VARIANTS`: chunked, segmented) back to back in one process,
 * each row naming its `variant`; elsewhere the variants are the same code and only the default runs.
 * Likewise for each GEMM micro-tile of `--tiles` (`SSD_GEMM_TILES`; default: the default tile only), each
 * row naming its `gemmTile`.
 */

import {
  SSD_GEMM_TILES,
  SSD_VARIANTS,
  type SsdGemmTile,
  type SsdScanInputs,
  type SsdVariant,
  selectiveScan,
  selectiveScanTraffic,
  ssdDefaultGemmTile,
  ssdDefaultVariant,
  ssdScan,
} from '@t2md/ssm';
import { selectiveScanRef, ssdScanRef } from '@t2md/ssm/testing';
import * as tf from '@tensorflow/tfjs-core';
import { parseChoiceList } from '../options.js';
import {
  checked,
  devicePeakMB,
  errorText,
  median,
  pickSizes,
  type RunnerOptions,
  relErr,
  round,
  type TimeOptions,
  timeRuns,
  uniform,
} from './measure.js';

export interface ScanShape {
  lengths: number[];
  heads: number;
  headdim: number;
  dstate: number;
  chunkSizes: number[];
  /** d_state of the selectiveScan rows (Mamba-1's default is 16). */
  selectiveDstate: number;
  /** Timed runs per row. */
  runs: number;
  /** ssdScan calls per timed run, kernel and reference alike (queued, synced once; ms is per call). */
  reps: number;
}

/** The full sweep (a real GPU) or the quick one (CPU, wasm, SwiftShader: seconds). */
export function scanShape(quick: boolean, sizes?: readonly number[]): ScanShape {
  return quick
    ? {
        lengths: pickSizes([256, 1024], sizes),
        heads: 4,
        headdim: 16,
        dstate: 16,
        chunkSizes: [64, 128, 256],
        selectiveDstate: 4,
        runs: 3,
        reps: 1,
      }
    : {
        lengths: pickSizes([4096, 16384, 32400], sizes),
        heads: 36,
        headdim: 64,
        dstate: 256,
        chunkSizes: [64, 128, 256],
        selectiveDstate: 16,
        runs: 7,
        reps: 10,
      };
}

/** One measurement; flat, so the docs' benchmarks page can table it. */
export interface ScanRow {
  op: 'ssdScan' | 'selectiveScan';
  impl: 'kernel' | 'tfjs-ref';
  pass: 'forward' | 'forward+backward';
  L: number;
  /** selectiveScan rows run heads·headdim channels (Mamba-1 has no heads) at their own d_state. */
  heads: number;
  headdim: number;
  dstate: number;
  chunkSize: number | null;
  /** ssdScan kernel rows: the WebGPU forward that ran (SsdScanOptions.variant); the backward is the same for all. */
  variant?: SsdVariant;
  /** ssdScan kernel rows: the micro-tile of every GEMM pass, forward and backward (SsdScanOptions.gemmTile). */
  gemmTile?: SsdGemmTile;
  /** Median wall ms per call (ssdScan rows: over `reps` calls queued back to back and synced once). */
  ms: number | null;
  reps?: number;
  /** Minimum bytes moved (every input read and output written once) / median time. */
  gbps: number | null;
  runs: number[];
  /**
   * On reference rows: ‖y_kernel − y_ref‖ / ‖y_ref‖ of the forward (kernel at chunk 128, default variant and tile).
   * On forward rows of another variant or tile than chunked with 4x4: ‖y_row − y_chunked,4x4‖ / ‖y_chunked,4x4‖
   * at the row's chunk.
   */
  relErr?: number;
  /** On WebGPU (unless --no-profile): GPU ms of one extra call summed over programs (tf.time), and per program. */
  gpuMs?: number;
  passes?: string;
  /** WebGPU only: the device-true peak of the point in MiB (measure.ts `devicePeakMB`). */
  devicePeakMB?: number;
  error?: string;
}

/**
 * One more call under tf.time, which on WebGPU times every program with timestamp queries (ssdScan
 * names each pass by its shader key; the bench creates Dawn with timestamp quantisation off, so short
 * passes do not read as multiples of 65.536 µs or 0); the GPU sum beside the wall median shows how much
 * of a call is CPU overhead or idle GPU. Off WebGPU tf.time has no GPU timer: nothing is added.
 */
async function profile(fn: () => tf.Tensor | tf.Tensor[], on: boolean): Promise<{ gpuMs: number; passes: string } | undefined> {
  if (!on || tf.getBackend() !== 'webgpu') return undefined;
  const info = (await tf.time(() => tf.dispose(fn()))) as tf.TimingInfo & { getExtraProfileInfo?: () => string };
  return { gpuMs: round(info.kernelMs as number), passes: info.getExtraProfileInfo?.() ?? '' };
}

const SSD_NAMES = ['x', 'dt', 'A', 'B', 'C', 'D', 'dtBias'] as const;
type SsdIn = Record<(typeof SSD_NAMES)[number], tf.Tensor>;

/** Inputs in the ranges a trained Mamba-2 sees: dt before softplus in [-4, -1], A in [-8, -1]. */
function ssdInputs(L: number, H: number, P: number, N: number, seed: number): SsdIn {
  return {
    x: uniform([1, L, H, P], -1, 1, seed),
    dt: uniform([1, L, H], -4, -1, seed + 1),
    A: uniform([H], -8, -1, seed + 2),
    B: uniform([1, L, 1, N], -1, 1, seed + 3),
    C: uniform([1, L, 1, N], -1, 1, seed + 4),
    D: uniform([H], 0.5, 1.5, seed + 5),
    dtBias: uniform([H], -1, 1, seed + 6),
  };
}

/** ssdScan's options that a row varies: the forward variant and the GEMM micro-tile. */
type Arm = { variant?: SsdVariant; gemmTile?: SsdGemmTile };
type ScanOp = (inputs: SsdScanInputs, opts: { chunkSize: number; dtSoftplus: boolean } & Arm) => { y: tf.Tensor };

/**
 * Gradients of Σ y·dy with respect to every float input: one forward and one backward. dy goes to
 * tf.grads as the output gradient rather than through tf.sum(tf.mul(y, dy)): tfjs-core's Sum gradient
 * builds ones(y.shape) on the CPU and uploads it on every call (151 MB through a fresh staging buffer
 * at L = 16384, 36 × 64), which is not the scan's cost.
 */
function ssdFwdBwd(op: ScanOp, inp: SsdIn, dy: tf.Tensor, chunkSize: number, arm: Arm = {}): tf.Tensor[] {
  const f = (...xs: tf.Tensor[]) => {
    const named = Object.fromEntries(SSD_NAMES.map((k, i) => [k, xs[i]])) as unknown as SsdScanInputs;
    return op(named, { chunkSize, dtSoftplus: true, ...arm }).y;
  };
  return tf.grads(f)(
    SSD_NAMES.map((k) => inp[k]),
    dy,
  );
}

/** `--tiles`: comma-separated SSD_GEMM_TILES names, or 'all'. */
export function parseTiles(list: string): SsdGemmTile[] {
  return parseChoiceList('--tiles', list, 'GEMM tiles', SSD_GEMM_TILES, true);
}

export interface ScanBenchOptions extends RunnerOptions {
  /** ssdScan's GEMM micro-tiles to time on WebGPU (`--tiles`; default: the default tile alone). */
  tiles?: readonly SsdGemmTile[];
}

export async function runScanBench(opts: ScanBenchOptions): Promise<ScanRow[]> {
  const s = scanShape(opts.quick, opts.sizes);
  const profiled = opts.profile !== false;
  const { heads: H, headdim: P, dstate: N } = s;
  const rows: ScanRow[] = [];
  // called outside each point's try: a results file that cannot be written stops the bench, it is no failed point
  const add = (row: ScanRow) => {
    const peak = devicePeakMB(); // of the point `checked` ran last: this row's
    opts.log(
      `  ${row.op} ${row.impl}${row.variant != null ? ` ${row.variant}` : ''}${row.gemmTile != null ? ` ${row.gemmTile}` : ''} L=${row.L} Q=${row.chunkSize ?? '-'} ${row.pass}: ${row.ms == null ? `failed (${row.error})` : `${row.ms.toFixed(2)} ms, ${row.gbps?.toPrecision(3)} GB/s`}${row.gpuMs != null ? `, GPU ${row.gpuMs} ms` : ''}`,
    );
    if (row.passes) opts.log(`    passes: ${row.passes}`);
    const done = rounded(peak != null ? { ...row, devicePeakMB: peak } : row);
    rows.push(done);
    opts.onRow?.(done);
  };
  const base = { heads: H, headdim: P, dstate: N };
  // the forward variants and the GEMM tiles differ on WebGPU only (cpu and wasm ignore the options)
  const webgpu = tf.getBackend() === 'webgpu';
  const variants: readonly SsdVariant[] = webgpu ? SSD_VARIANTS : [ssdDefaultVariant()];
  const tiles: readonly SsdGemmTile[] = webgpu && opts.tiles != null ? opts.tiles : [ssdDefaultGemmTile()];
  const arms = variants.flatMap((variant) => tiles.map((gemmTile): Required<Arm> => ({ variant, gemmTile })));
  const isBase = (a: Required<Arm>) => a.variant === 'chunked' && a.gemmTile === '4x4';
  for (const L of s.lengths) {
    opts.log(`scan: L=${L}, ${H} heads × ${P}, d_state ${N}`);
    const inp = ssdInputs(L, H, P, N, L);
    const dy = uniform([1, L, H, P], -1, 1, 3);
    const fwdBytes = 4 * (2 * L * H * P + 2 * L * N + L * H); // read x, B, C, dt; write y
    const fbBytes = 2 * fwdBytes; // and read dy; write dx, dB, dC, ddt
    const budgetMs = 60_000;
    // the kernel and the tfjs-ops reference are timed alike: the same runs, warm-up and calls per sync
    const timing: TimeOptions = { runs: s.runs, budgetMs, reps: s.reps };
    for (const Q of s.chunkSizes) {
      for (const pass of ['forward', 'forward+backward'] as const) {
        for (const arm of arms) {
          const head = { op: 'ssdScan', impl: 'kernel', pass, L, ...base, chunkSize: Q, ...arm } as const;
          const fwd = (a: Arm) => () => ssdScan(inp, { chunkSize: Q, dtSoftplus: true, ...a }).y;
          const fn = pass === 'forward' ? fwd(arm) : () => ssdFwdBwd(ssdScan, inp, dy, Q, arm);
          let row: ScanRow;
          try {
            row = await checked(async (): Promise<ScanRow> => {
              // another variant's or tile's forward is checked against the chunked 4x4 one on the same inputs
              let err: number | undefined;
              if (pass === 'forward' && !isBase(arm)) {
                const [a, r] = [fwd(arm)(), fwd({ variant: 'chunked', gemmTile: '4x4' })()];
                err = await relErr(a, r);
                tf.dispose([a, r]);
              }
              const runs = await timeRuns(fn, timing);
              const ms = median(runs);
              const gbps = (pass === 'forward' ? fwdBytes : fbBytes) / ms / 1e6;
              return { ...head, ms, reps: s.reps, gbps, runs, ...(err != null ? { relErr: err } : {}), ...(await profile(fn, profiled)) };
            });
          } catch (err) {
            row = { ...head, ms: null, gbps: null, runs: [], error: errorText(err) };
          }
          add(row);
        }
      }
    }
    // The reference holds [H·L/Q, Q, Q] segment sums and more: forward up to ~400 MB of them, the
    // backward (several such tensors on the tape) up to ~100 MB.
    const Q = 128;
    const refBytes = 4 * H * L * Q;
    for (const pass of ['forward', 'forward+backward'] as const) {
      if (refBytes > (pass === 'forward' ? 400e6 : 100e6)) continue;
      const fn = pass === 'forward' ? () => ssdScanRef(inp, { chunkSize: Q, dtSoftplus: true }).y : () => ssdFwdBwd(ssdScanRef, inp, dy, Q);
      let row: ScanRow;
      try {
        row = await checked(async (): Promise<ScanRow> => {
          // the forward is also the kernel's accuracy check
          let err: number | undefined;
          if (pass === 'forward') {
            const [a, r] = [ssdScan(inp, { chunkSize: Q, dtSoftplus: true }).y, fn() as tf.Tensor];
            err = await relErr(a, r);
            tf.dispose([a, r]);
          }
          const runs = await timeRuns(fn, timing);
          const ms = median(runs);
          return {
            op: 'ssdScan',
            impl: 'tfjs-ref',
            pass,
            L,
            ...base,
            chunkSize: Q,
            ms,
            reps: s.reps,
            gbps: (pass === 'forward' ? fwdBytes : fbBytes) / ms / 1e6,
            runs,
            ...(err != null ? { relErr: err } : {}),
          };
        });
      } catch (err) {
        row = { op: 'ssdScan', impl: 'tfjs-ref', pass, L, ...base, chunkSize: Q, ms: null, gbps: null, runs: [], error: errorText(err) };
      }
      add(row);
    }
    tf.dispose([dy, ...Object.values(inp)]);
    await selectiveRows(L, s, add);
  }
  return rows;
}

/** A row as the results file holds it: ms to µs, GB/s to 4 significant digits. */
const rounded = (r: ScanRow): ScanRow => ({
  ...r,
  ms: r.ms == null ? null : round(r.ms),
  gbps: r.gbps == null ? null : Number(r.gbps.toPrecision(4)),
  runs: r.runs.map((x) => round(x)),
});

/** Mamba-1's selective scan at the same width (dim = heads·headdim), forward and forward+backward. */
async function selectiveRows(L: number, s: ScanShape, add: (row: ScanRow) => void): Promise<void> {
  // the kernel and its reference alike: the same runs, warm-up and one sync per call
  const timing: TimeOptions = { runs: s.runs, budgetMs: 60_000 };
  const dim = s.heads * s.headdim;
  const Ns = s.selectiveDstate;
  const base = { L, heads: s.heads, headdim: s.headdim, dstate: Ns, chunkSize: null };
  const si = {
    u: uniform([1, dim, L], -1, 1, 11),
    delta: uniform([1, dim, L], -4, -1, 12),
    A: uniform([dim, Ns], -8, -1, 13),
    B: uniform([1, Ns, L], -1, 1, 14),
    C: uniform([1, Ns, L], -1, 1, 15),
    D: uniform([dim], 0.5, 1.5, 16),
  };
  const sdy = uniform([1, dim, L], -1, 1, 17);
  const names = ['u', 'delta', 'A', 'B', 'C', 'D'] as const;
  const bytes = selectiveScanTraffic({ batch: 1, dim, seqlen: L, dstate: Ns }, { hasD: true });
  // dy as tf.grads' output gradient (see ssdFwdBwd)
  const fwdBwd = () =>
    tf.grads(
      (...xs: tf.Tensor[]) => selectiveScan(Object.fromEntries(names.map((k, i) => [k, xs[i]])) as never, { deltaSoftplus: true }).y,
    )(
      names.map((k) => si[k]),
      sdy,
    );
  for (const pass of ['forward', 'forward+backward'] as const) {
    const fn = pass === 'forward' ? () => selectiveScan(si, { deltaSoftplus: true }).y : fwdBwd;
    let row: ScanRow;
    try {
      const runs = await checked(() => timeRuns(fn, timing));
      const ms = median(runs);
      row = { op: 'selectiveScan', impl: 'kernel', pass, ...base, ms, gbps: ((pass === 'forward' ? 1 : 2) * bytes) / ms / 1e6, runs };
    } catch (err) {
      row = { op: 'selectiveScan', impl: 'kernel', pass, ...base, ms: null, gbps: null, runs: [], error: errorText(err) };
    }
    add(row);
  }
  // The reference is a loop of a few ops per time step: only short sequences.
  if (L <= 256) {
    const fn = () => selectiveScanRef(si, { deltaSoftplus: true }).y;
    let row: ScanRow;
    try {
      const { err, runs } = await checked(async () => {
        const [a, r] = [selectiveScan(si, { deltaSoftplus: true }).y, fn()]; // the accuracy check
        const e = await relErr(a, r);
        tf.dispose([a, r]);
        return { err: e, runs: await timeRuns(fn, timing) };
      });
      const ms = median(runs);
      row = { op: 'selectiveScan', impl: 'tfjs-ref', pass: 'forward', ...base, ms, gbps: bytes / ms / 1e6, runs, relErr: err };
    } catch (err) {
      row = { op: 'selectiveScan', impl: 'tfjs-ref', pass: 'forward', ...base, ms: null, gbps: null, runs: [], error: errorText(err) };
    }
    add(row);
  }
  tf.dispose([sdy, ...Object.values(si)]);
}
