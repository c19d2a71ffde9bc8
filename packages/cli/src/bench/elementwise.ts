/**
 * `t2md bench elementwise`: effective bandwidth (bytes read + written / time) of our elementwise
 * programs — geluTanh forward and gradient, gatedAdd, adaNorm, and a plain `x·a + b` on the shared
 * helper — at 64M floats, under the old v1 programs and several v2 layouts of `ElementwiseProgram`,
 * against tfjs's own `tf.add(x, 1)`, `tf.add(x, y)` and `tf.relu(x)` in the same process.
 */
import {
  type ElementwiseConfig,
  ElementwiseProgram,
  type ElementwiseSpec,
  GELU_TANH_GRAD,
  geluTanh,
  registerCoreKernels,
  registerKernelsOnce,
  runProgram,
  setElementwiseConfig,
} from '@t2md/core';
import { adaNorm, gatedAdd } from '@t2md/dit';
import * as tf from '@tensorflow/tfjs-core';
import { errorText, type Log, median, relErr, round, sizesFromEnv, timeRuns, uniform } from './measure.js';
import { formatTable } from './table.js';

/** One measurement. */
export interface ElementwiseRow {
  op: string;
  /** Elements of the output. */
  elements: number;
  /** 'tfjs' for tfjs's own kernels, 'js' off WebGPU, else the layout (v1, or v2 items/workgroup/grid). */
  variant: string;
  /** Median ms per launch. */
  ms: number | null;
  /** Bytes read + written per launch (each input once, the output once) / median ms. */
  gbps: number | null;
  bytes: number;
  /** ms per launch of each timed loop. */
  runs: number[];
  /** ‖y − y_v1‖ / ‖y_v1‖ over the last 2^20 outputs (v2 rows; the affine row against tfjs ops). */
  relErr?: number;
  error?: string;
}

/** The layouts measured on WebGPU; the first is the old programs. */
const VARIANTS: { label: string; config: Partial<ElementwiseConfig> }[] = [
  { label: 'v1', config: { version: 'v1' } },
  { label: 'v2 i1 w256', config: { version: 'v2', itemsPerThread: 1, workgroupSize: 256, maxWorkgroups: 65535 } },
  { label: 'v2 i4 w256', config: { version: 'v2', itemsPerThread: 4, workgroupSize: 256, maxWorkgroups: 65535 } },
  { label: 'v2 i8 w256', config: { version: 'v2', itemsPerThread: 8, workgroupSize: 256, maxWorkgroups: 65535 } },
  { label: 'v2 i4 w128', config: { version: 'v2', itemsPerThread: 4, workgroupSize: 128, maxWorkgroups: 65535 } },
  // 132 SMs × 8 resident workgroups of 256: one wave of a persistent grid that strides
  { label: 'v2 i4 w256 g1056', config: { version: 'v2', itemsPerThread: 4, workgroupSize: 256, maxWorkgroups: 1056 } },
];

/**
 * Launches per timed loop. A 64M-float op takes ~0.2-0.5 ms on the H100 while one readback round trip
 * costs ~0.1-1 ms, so each timed run is `LAUNCHES` back-to-back launches ended by ONE sync, and the
 * run's time is divided by `LAUNCHES`: the GPU queue stays full and the sync is amortised.
 */
const LAUNCHES = 20;
const RUNS = 10;
/** DiT-XL's hidden size, for the [N, T, D] ops. */
const D = 1152;
const TAIL = 2 ** 20;

const AFFINE = 'T2mdBenchAffine';
const affineSpec: ElementwiseSpec = {
  name: 'bench_affine',
  inputs: ['x'],
  uniforms: 'a : f32, b : f32,',
  code: 'fn elementwise(e : i32, v : T) -> T { return v * uniforms.a + uniforms.b; }',
};

/** y = x·a + b on the shared helper (webgpu only): the helper's floor, the same bytes as tf.add(x, 1). */
function affine(x: tf.Tensor, a: number, b: number): tf.Tensor {
  registerKernelsOnce([
    {
      kernelName: AFFINE,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const t = inputs.x as tf.TensorInfo;
        const at = attrs as unknown as { a: number; b: number };
        return runProgram(
          backend,
          new ElementwiseProgram(affineSpec, t.shape),
          [t],
          [
            { type: 'float32', data: [at.a] },
            { type: 'float32', data: [at.b] },
          ],
        );
      },
    },
  ]);
  return tf.engine().runKernel(AFFINE, { x }, { a, b } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** The last TAIL elements of `t`, flat (the grid-stride tail is where a layout bug would show). */
const tail = (t: tf.Tensor): tf.Tensor =>
  tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [Math.max(0, t.size - TAIL)], [Math.min(TAIL, t.size)]));

interface Case {
  op: string;
  bytes: number;
  fn: () => tf.Tensor;
  /** Has a v1 program (all but the bench's affine). */
  v1: boolean;
}

export async function runElementwiseBench(o: { quick: boolean; log: Log }): Promise<ElementwiseRow[]> {
  registerCoreKernels(); // the gradient kernel is launched directly below
  const gpu = tf.getBackend() === 'webgpu';
  const launches = o.quick ? 5 : LAUNCHES;
  const rows: ElementwiseRow[] = [];
  const add = (row: ElementwiseRow) => {
    rows.push(row);
    const err = row.relErr == null ? '' : `, rel err ${row.relErr.toExponential(1)}`;
    o.log(
      `  ${row.op} [${row.variant}]: ${row.ms == null ? `failed (${row.error})` : `${row.ms.toFixed(3)} ms, ${row.gbps?.toPrecision(3)} GB/s${err}`}`,
    );
  };
  const measure = async (op: string, variant: string, elements: number, bytes: number, fn: () => tf.Tensor, ref?: tf.Tensor) => {
    try {
      let e: number | undefined;
      if (ref != null) {
        const y = tf.tidy(() => tail(fn()));
        e = await relErr(y, ref);
        y.dispose();
      }
      // ms per launch of RUNS loops of `launches` queued launches (after 2 untimed loops that compile and fill the pool)
      const runs = await timeRuns(fn, { runs: RUNS, warmup: 2, reps: launches });
      const ms = median(runs);
      add({ op, elements, variant, ms, gbps: bytes / ms / 1e6, bytes, runs, ...(e != null ? { relErr: e } : {}) });
    } catch (err) {
      add({ op, elements, variant, ms: null, gbps: null, bytes, runs: [], error: errorText(err) });
    }
  };

  for (const n of sizesFromEnv([o.quick ? 2 ** 20 : 2 ** 26])) {
    const N = n >= 2 * D ? 2 : 1;
    const T = Math.max(1, Math.floor(n / (N * D)));
    const m3 = N * T * D; // [N, T, D] ops use the largest such size ≤ n
    o.log(`elementwise: ${n} floats; [N, T, D] ops at [${N}, ${T}, ${D}] (${m3})`);
    const x = uniform([n], -4, 4, 1);
    const y = uniform([n], -1, 1, 2);
    const x3 = tf.tidy(() => tf.reshape(tf.slice(x, 0, m3), [N, T, D]));
    const y3 = tf.tidy(() => tf.reshape(tf.slice(y, 0, m3), [N, T, D]));
    const ada = uniform([N, 6, D], -1, 1, 3);
    const f4 = 4;

    await measure('tf.add(x, 1)', 'tfjs', n, 2 * f4 * n, () => tf.tidy(() => tf.add(x, 1)));
    await measure('tf.add(x, y)', 'tfjs', n, 3 * f4 * n, () => tf.add(x, y));
    await measure('tf.relu(x)', 'tfjs', n, 2 * f4 * n, () => tf.relu(x));

    const cases: Case[] = [
      { op: 'geluTanh', bytes: 2 * f4 * n, fn: () => geluTanh(x), v1: true },
      {
        op: 'geluTanh grad',
        bytes: 3 * f4 * n,
        fn: () => tf.engine().runKernel(GELU_TANH_GRAD, { dy: y, x }) as tf.Tensor,
        v1: true,
      },
      { op: 'gatedAdd', bytes: 3 * f4 * m3, fn: () => gatedAdd(x3, y3, ada, 2), v1: true },
      { op: 'adaNorm', bytes: 2 * f4 * m3, fn: () => adaNorm(x3, ada, 0, 1), v1: true },
    ];
    if (gpu) cases.push({ op: 'affine x*a+b', bytes: 2 * f4 * n, fn: () => affine(x, 0.5, 1), v1: false });

    for (const c of cases) {
      const elements = c.op === 'gatedAdd' || c.op === 'adaNorm' ? m3 : n;
      if (!gpu) {
        await measure(c.op, 'js', elements, c.bytes, c.fn);
        continue;
      }
      // v2 rows are checked against v1's output; the affine against tfjs ops
      let ref: tf.Tensor | undefined = c.v1 ? undefined : tf.tidy(() => tail(tf.add(tf.mul(x, 0.5), 1)));
      for (const v of VARIANTS) {
        if (v.config.version === 'v1' && !c.v1) continue;
        const restore = setElementwiseConfig(v.config);
        try {
          if (v.config.version === 'v1') {
            await measure(c.op, v.label, elements, c.bytes, c.fn);
            try {
              ref = tf.tidy(() => tail(c.fn()));
            } catch {
              ref = undefined; // v1 failed (its row says why): the v2 rows go unchecked
            }
          } else {
            await measure(c.op, v.label, elements, c.bytes, c.fn, ref);
          }
        } finally {
          restore();
        }
      }
      ref?.dispose();
    }
    tf.dispose([x, y, x3, y3, ada]);
  }
  return rows.map((r) => ({
    ...r,
    ms: r.ms == null ? null : round(r.ms, 4),
    gbps: r.gbps == null ? null : Number(r.gbps.toPrecision(4)),
    runs: r.runs.map((x) => round(x, 4)),
  }));
}

export function elementwiseTable(rows: readonly ElementwiseRow[]): string {
  return formatTable(rows, [
    ['op', (r) => r.op],
    ['elements', (r) => String(r.elements)],
    ['variant', (r) => r.variant],
    ['ms', (r) => (r.ms == null ? '—' : r.ms.toFixed(3))],
    ['GB/s', (r) => (r.gbps == null ? '—' : r.gbps.toPrecision(3))],
    ['rel err', (r) => (r.relErr != null ? r.relErr.toExponential(1) : r.error ? `failed: ${r.error.slice(0, 40)}` : '')],
  ]);
}
