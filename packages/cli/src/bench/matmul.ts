/**
 * `t2md bench matmul`: the GEMMs that dominate a PixArt-XL/2 teacher and a T2MD student forward, at
 * T tokens (rows), for every GEMM variant (tfjs's matMul, our 128×128 and 64×64 tilings, each at two
 * inner-loop unrolls): median ms, TFLOP/s, and the error against tfjs's result. Plus a 4096³ square
 * matmul, and the two backward GEMMs of one linear (dx: NN, dw: TN), since training runs those as often
 * as the forward. All variants of a shape are timed in one process with their samples interleaved and
 * the same calls per sync, so tfjs's baseline is measured exactly like ours.
 */
import { autoTile, gemm, type MatMulUnroll } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import {
  checked,
  devicePeakMB,
  failRow,
  type Log,
  median,
  normal,
  pickSizes,
  type RunnerOptions,
  round,
  timeInterleaved,
} from './measure.js';
import { formatTable } from './table.js';

type Layout = 'NT' | 'NN' | 'TN';
const VARIANTS = ['tfjs', 't128', 't64'] as const;
export type MatmulVariantName = (typeof VARIANTS)[number];

/** One GEMM: C [M, N] = op(A)·op(B) (+ bias). NT is `linear` (x [M, K], w [N, K]). */
interface MatmulShape {
  op: string;
  layout: Layout;
  M: number;
  N: number;
  K: number;
  bias: boolean;
}

export interface MatmulRow extends MatmulShape {
  variant: MatmulVariantName;
  /** What gemm's variant auto (the default) picks for this shape today. */
  autoPick: string;
  /** k-steps written out per inner-loop iteration (16 = all); null for tfjs's matMul, which has no such knob. */
  unroll: MatMulUnroll | null;
  /** Calls per timed sample (ms is per call): small GEMMs are queued back to back, synced once. */
  reps: number;
  ms: number | null;
  tflops: number | null;
  /** ms of tfjs's matMul on the same shape over this row's ms. */
  speedup: number | null;
  /** ‖C − C_tfjs‖ / ‖C_tfjs‖ and max |C − C_tfjs| / max |C_tfjs|. */
  relErr: number | null;
  maxErr: number | null;
  runs: number[];
  /** WebGPU only: the device-true peak (MiB) of timing all variants of this shape together (measure.ts `devicePeakMB`). */
  devicePeakMB?: number;
  error?: string;
}

/** PixArt-XL/2 (D 1152, MLP 4608) and the student's Mamba-2 mixer (d_inner 2304, N 256, 36 heads). */
function shapesAt(T: number, D: number, quick: boolean): MatmulShape[] {
  const linear = (op: string, N: number, K: number, bias: boolean): MatmulShape => ({ op, layout: 'NT', M: T, N, K, bias });
  if (quick) return [linear('proj', D, D, true)];
  const dInner = 2 * D;
  return [
    linear('qkv', 3 * D, D, true),
    linear('proj', D, D, true),
    linear('mlp.fc1', 4 * D, D, true),
    linear('mlp.fc2', D, 4 * D, true),
    linear('mamba.in_proj', 2 * dInner + 2 * 256 + 36, D, false),
    linear('mamba.out_proj', D, dInner, false),
    // backward of mlp.fc1: dx = dy·w (NN) [T, 4D]·[4D, D]; dw = dyᵀ·x (TN) [4D, T]ᵀ·[T, D]
    { op: 'mlp.fc1 dx', layout: 'NN', M: T, N: D, K: 4 * D, bias: false },
    { op: 'mlp.fc1 dw', layout: 'TN', M: 4 * D, N: D, K: T, bias: false },
  ];
}

export function matmulShapes(quick: boolean, sizes?: readonly number[]): MatmulShape[] {
  const square = quick ? 128 : 4096;
  const tokens = pickSizes(quick ? [64, 200] : [4096, 16384], sizes);
  return [
    ...tokens.flatMap((T) => shapesAt(T, quick ? 72 : 1152, quick)),
    { op: 'square', layout: 'NN', M: square, N: square, K: square, bias: false },
  ];
}

/** The GEMM variants measured, each as the `gemm` options that select it (tfjs's matMul has no unroll). */
interface Variant {
  variant: MatmulVariantName;
  unroll: MatMulUnroll | null;
}

function variantsFor(quick: boolean): Variant[] {
  if (tf.getBackend() !== 'webgpu') return [{ variant: 'tfjs', unroll: null }]; // off webgpu every variant is tfjs's
  const unrolls: MatMulUnroll[] = quick ? [16] : [16, 4];
  return [
    { variant: 'tfjs', unroll: null },
    ...(['t128', 't64'] as const).flatMap((variant) => unrolls.map((unroll) => ({ variant, unroll }))),
  ];
}

export async function runMatmulBench(o: RunnerOptions): Promise<MatmulRow[]> {
  const rows: MatmulRow[] = [];
  for (const s of matmulShapes(o.quick, o.sizes)) {
    // a shape's variants are one point (timed interleaved): its rows come out together
    for (const row of await benchShape(s, o)) {
      rows.push(row);
      o.onRow?.(row);
    }
  }
  return rows;
}

async function benchShape(s: MatmulShape, o: { quick: boolean; log: Log }): Promise<MatmulRow[]> {
  const { M, N, K, layout } = s;
  const tA = layout === 'TN';
  const tB = layout === 'NT';
  o.log(`matmul: ${s.op} ${layout} M=${M} N=${N} K=${K}${s.bias ? ' +bias' : ''}`);
  const a = normal(tA ? [K, M] : [M, K], M + K);
  const b = normal(tB ? [N, K] : [K, N], N + K + 1, 1 / Math.sqrt(K));
  const bias = s.bias ? normal([N], N) : undefined;
  const flops = 2 * M * N * K;
  const runs = o.quick ? 3 : flops > 1e11 ? 5 : 10;
  // One readback per sample costs ~0.1-1 ms, as much as a whole 4096×1152×1152 GEMM at 20 TFLOP/s:
  // queue enough calls for ~2e11 FLOPs (10 ms at 20 TFLOP/s) per sample and report ms per call.
  const reps = o.quick ? 1 : Math.min(50, Math.max(1, Math.ceil(2e11 / flops)));
  const call =
    ({ variant, unroll }: Variant) =>
    () =>
      gemm(a, b, { transposeA: tA, transposeB: tB, bias, variant, ...(unroll != null ? { unroll } : {}) });
  const rows: MatmulRow[] = variantsFor(o.quick).map((v) => ({
    ...s,
    ...v,
    autoPick: autoTile(M, N),
    reps,
    ms: null,
    tflops: null,
    speedup: null,
    relErr: null,
    maxErr: null,
    runs: [],
  }));
  // each variant's output (the accuracy check, and a first call that compiles it); one that fails is left out of the timing
  const outputs: (Float32Array | undefined)[] = [];
  for (const row of rows) {
    try {
      const out = await checked(async () => {
        const c = call(row)();
        const values = (await c.data()) as Float32Array;
        c.dispose();
        return values;
      });
      outputs.push(out);
    } catch (err) {
      failRow(row, err);
      outputs.push(undefined);
      o.log(`  ${row.variant}${row.unroll != null ? ` unroll ${row.unroll}` : ''} failed: ${row.error}`);
    }
  }
  const live = rows.filter((r) => r.error == null);
  try {
    const samples = await checked(() =>
      timeInterleaved(
        live.map((r) => call(r)),
        { runs, warmup: 2, budgetMs: 30_000, reps },
      ),
    );
    live.forEach((r, i) => {
      r.runs = samples[i]!;
      r.ms = median(r.runs);
      r.tflops = flops / (r.ms * 1e-3) / 1e12;
    });
  } catch (err) {
    for (const r of live) failRow(r, err);
  }
  // every variant of the shape ran interleaved in one point: the peak is the shape's, on each row
  const peak = devicePeakMB();
  if (peak != null) for (const r of rows) r.devicePeakMB = peak;
  const ref = outputs[0];
  const refMs = rows[0]!.variant === 'tfjs' ? rows[0]!.ms : null;
  rows.forEach((row, i) => {
    if (i > 0 && ref != null && outputs[i] != null) [row.relErr, row.maxErr] = errors(outputs[i]!, ref);
    if (refMs != null && row.ms != null) row.speedup = refMs / row.ms;
    if (row.ms != null) {
      o.log(
        `  ${row.variant}${row.unroll != null ? ` unroll ${row.unroll}` : ''}: ${row.ms.toFixed(3)} ms, ${row.tflops!.toPrecision(3)} TFLOP/s` +
          (row.relErr == null ? '' : `, rel err ${row.relErr.toExponential(2)}, max err ${row.maxErr!.toExponential(2)}`),
      );
    }
  });
  tf.dispose([a, b, ...(bias ? [bias] : [])]);
  return rows.map((r) => ({
    ...r,
    ms: r.ms == null ? null : round(r.ms),
    tflops: r.tflops == null ? null : Number(r.tflops.toPrecision(3)),
    speedup: r.speedup == null ? null : Number(r.speedup.toPrecision(3)),
    relErr: r.relErr == null ? null : Number(r.relErr.toPrecision(3)),
    maxErr: r.maxErr == null ? null : Number(r.maxErr.toPrecision(3)),
    runs: r.runs.map((x) => round(x)),
  }));
}

/** [‖x − y‖ / ‖y‖, max |x − y| / max |y|]. */
function errors(x: Float32Array, y: Float32Array): [number, number] {
  let num = 0;
  let den = 0;
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < y.length; i++) {
    const d = x[i]! - y[i]!;
    num += d * d;
    den += y[i]! * y[i]!;
    maxDiff = Math.max(maxDiff, Math.abs(d));
    maxRef = Math.max(maxRef, Math.abs(y[i]!));
  }
  if (!Number.isFinite(num) || Number.isNaN(maxDiff)) return [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
  return [Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30), maxDiff / Math.max(maxRef, 1e-30)];
}

const num = (x: number | null, digits = 2): string => (x == null ? '—' : x.toFixed(digits));

export function matmulTable(rows: readonly MatmulRow[]): string {
  return formatTable(rows, [
    ['op', (r) => r.op],
    ['layout', (r) => `${r.layout}${r.bias ? '+b' : ''}`],
    ['M×N×K', (r) => `${r.M}×${r.N}×${r.K}`],
    [
      'variant',
      (r) => `${r.variant === r.autoPick ? `${r.variant}*` : r.variant}${r.unroll != null && r.unroll !== 16 ? ` u${r.unroll}` : ''}`,
    ],
    ['ms', (r) => num(r.ms, 3)],
    ['TFLOP/s', (r) => (r.tflops == null ? '—' : r.tflops.toPrecision(3))],
    ['vs tfjs', (r) => (r.speedup == null ? '—' : `${r.speedup.toFixed(2)}×`)],
    ['rel err', (r) => (r.relErr == null ? '' : r.relErr.toExponential(1))],
    ['max err', (r) => (r.error ? `failed: ${r.error.slice(0, 40)}` : r.maxErr == null ? '' : r.maxErr.toExponential(1))],
  ]);
}
