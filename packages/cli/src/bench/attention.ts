/**
 * `t2md bench attention`: the memory-efficient `attention` kernel at PixArt-XL/2's self-attention shape
 * (16 heads × L tokens × head dim 72, batch 1, f32), forward and forward+backward, against the naive
 * softmax(QKᵀ)V of tfjs ops (`attentionRef`) where its L×L scores fit.
 */
import { attention, attentionRef } from '@t2md/dit';
import * as tf from '@tensorflow/tfjs-core';
import { checked, devicePeakMB, failRow, median, normal, pickSizes, type RunnerOptions, relErr, round, timeRuns } from './measure.js';

export interface AttentionShape {
  tokens: number[];
  heads: number;
  headDim: number;
  runs: number;
}

export function attentionShape(quick: boolean, sizes?: readonly number[]): AttentionShape {
  return quick
    ? { tokens: pickSizes([256, 1024], sizes), heads: 4, headDim: 32, runs: 3 }
    : { tokens: pickSizes([1024, 4096, 16384, 32400], sizes), heads: 16, headDim: 72, runs: 5 };
}

/** One size; the same fields as the committed 2026-11-25 attention results. */
export interface AttentionRow {
  batch: number;
  heads: number;
  tokens: number;
  headDim: number;
  /** Median wall ms of the kernel's forward, and of forward+backward (dq, dk, dv). */
  fwdMs: number | null;
  fwdBwdMs: number | null;
  /** 4·L²·Dh·heads FLOPs of QKᵀ and PV per forward, over its median time. */
  fwdTflops: number | null;
  /** The naive tfjs-ops attention, where the heads·L² scores fit (null where they do not). */
  naiveFwdMs: number | null;
  naiveFwdBwdMs: number | null;
  /** ‖out_kernel − out_naive‖ / ‖out_naive‖, where the naive one ran. */
  relErrVsNaive: number | null;
  fwdRuns: number[];
  fwdBwdRuns: number[];
  /** WebGPU only: the device-true peak of the point in MiB (measure.ts `devicePeakMB`). */
  devicePeakMB?: number;
  error?: string;
}

/** Bytes of one heads×L×L float32 score tensor above which the naive forward (backward) is skipped. */
const NAIVE_FWD_BYTES = 2 ** 31 - 4; // WebGPU's largest storage binding on the H100 (2 GiB - 4)
const NAIVE_BWD_BYTES = 2 ** 29; // the backward keeps several L×L tensors on its tape

export async function runAttentionBench(opts: RunnerOptions): Promise<AttentionRow[]> {
  const s = attentionShape(opts.quick, opts.sizes);
  const { heads, headDim: dh } = s;
  const rows: AttentionRow[] = [];
  for (const L of s.tokens) {
    opts.log(`attention: ${heads} heads × ${L} tokens × ${dh}`);
    const row: AttentionRow = {
      batch: 1,
      heads,
      tokens: L,
      headDim: dh,
      fwdMs: null,
      fwdBwdMs: null,
      fwdTflops: null,
      naiveFwdMs: null,
      naiveFwdBwdMs: null,
      relErrVsNaive: null,
      fwdRuns: [],
      fwdBwdRuns: [],
    };
    const shape = [1, heads, L, dh];
    const [q, k, v, dy] = [1, 2, 3, 4].map((i) => normal(shape, L + i)) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    const runs = L >= 16384 ? Math.min(3, s.runs) : s.runs;
    const budgetMs = 60_000;
    // the kernel and the naive reference are timed alike: the same runs, warm-up and one sync per call
    const grads = (f: typeof attention) => () => tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => f(a, b, c))([q, k, v], dy);
    // the kernel's peak alone: the naive reference after it holds the whole score matrix
    let peak: number | null | undefined;
    try {
      try {
        await checked(async () => {
          row.fwdRuns = await timeRuns(() => attention(q, k, v), { runs, budgetMs });
          row.fwdMs = median(row.fwdRuns);
          row.fwdTflops = (4 * L * L * dh * heads) / (row.fwdMs * 1e-3) / 1e12;
          opts.log(`  forward ${row.fwdMs.toFixed(2)} ms (${row.fwdTflops.toPrecision(3)} TFLOP/s)`);
          row.fwdBwdRuns = await timeRuns(grads(attention), { runs, budgetMs });
          row.fwdBwdMs = median(row.fwdBwdRuns);
          opts.log(`  forward+backward ${row.fwdBwdMs.toFixed(2)} ms`);
        });
      } finally {
        peak = devicePeakMB();
      }
      await checked(async () => {
        const scoreBytes = 4 * heads * L * L;
        if (scoreBytes <= NAIVE_FWD_BYTES) {
          row.naiveFwdMs = median(await timeRuns(() => attentionRef(q, k, v), { runs, budgetMs }));
          const a = attention(q, k, v);
          const r = attentionRef(q, k, v);
          row.relErrVsNaive = await relErr(a, r);
          tf.dispose([a, r]);
          opts.log(`  naive forward ${row.naiveFwdMs.toFixed(2)} ms, rel err ${row.relErrVsNaive.toExponential(2)}`);
        }
        if (scoreBytes <= NAIVE_BWD_BYTES) {
          row.naiveFwdBwdMs = median(await timeRuns(grads(attentionRef), { runs, budgetMs }));
          opts.log(`  naive forward+backward ${row.naiveFwdBwdMs.toFixed(2)} ms`);
        }
      });
    } catch (err) {
      failRow(row, err);
      opts.log(`  failed: ${row.error}`);
    }
    if (peak != null) row.devicePeakMB = peak;
    tf.dispose([q, k, v, dy]);
    const done = rounded(row);
    rows.push(done);
    opts.onRow?.(done);
  }
  return rows;
}

const r3 = (x: number | null, d = 3) => (x == null ? null : round(x, d));

/** A row as the results file holds it: timings to µs, rates and errors to 3 significant digits. */
const rounded = (r: AttentionRow): AttentionRow => ({
  ...r,
  fwdMs: r3(r.fwdMs),
  fwdBwdMs: r3(r.fwdBwdMs),
  fwdTflops: r.fwdTflops == null ? null : Number(r.fwdTflops.toPrecision(3)),
  naiveFwdMs: r3(r.naiveFwdMs),
  naiveFwdBwdMs: r3(r.naiveFwdBwdMs),
  relErrVsNaive: r.relErrVsNaive == null ? null : Number(r.relErrVsNaive.toPrecision(3)),
  fwdRuns: r.fwdRuns.map((x) => round(x)),
  fwdBwdRuns: r.fwdBwdRuns.map((x) => round(x)),
});
