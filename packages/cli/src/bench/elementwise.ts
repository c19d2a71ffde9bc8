/**
 * `t2md bench elementwise`: effective bandwidth (bytes read + written / time) of our elementwise
 * programs — geluTanh forward and gradient, gatedAdd, adaNorm, and a plain `x·a + b` on the shared
 * helper — at 64M floats, under several layouts (each op's `layout` option), against tfjs's own
 * `tf.add`, `tf.relu` in the same process, timed the same way (the same launches per sync).
 */
import {
  type ElementwiseConfig,
  ElementwiseProgram,
  type ElementwiseSpec,
  GELU_TANH_GRAD,
  geluTanh,
  layoutOf,
  registerCoreKernels,
  registerKernelsOnce,
  resolveElementwiseLayout,
  runProgram,
} from '@t2md/core';
import { adaNorm, adaNormRef, gatedAdd, gatedAddRef } from '@t2md/dit';
import * as tf from '@tensorflow/tfjs-core';
import { checked, devicePeakMB, errorText, median, pickSizes, type RunnerOptions, relErr, round, timeRuns, uniform } from './measure.js';
import { formatTable } from './table.js';

/** One measurement. */
export interface ElementwiseRow {
  op: string;
  /** Elements of the output. */
  elements: number;
  /** 'tfjs' for tfjs's own kernels, 'js' off WebGPU, else the layout's label (items/workgroup/grid). */
  variant: string;
  /** The layout passed to the op (WebGPU rows of our ops): every setting that changes the program. */
  layout?: ElementwiseConfig;
  /** Median ms per launch. */
  ms: number | null;
  /** Bytes read + written per launch (each input once, the output once) / median ms. */
  gbps: number | null;
  bytes: number;
  /** ms per launch of each timed loop. */
  runs: number[];
  /** ‖y − y_ref‖ / ‖y_ref‖ over the last 2^20 outputs, y_ref made of tfjs-core ops (WebGPU rows of our ops). */
  relErr?: number;
  /** WebGPU only: the device-true peak of the point in MiB (measure.ts `devicePeakMB`). */
  devicePeakMB?: number;
  error?: string;
}

/** The layouts measured on WebGPU, passed to each op's `layout` option; the first is 'auto'. */
const VARIANTS: { label: string; layout: Partial<ElementwiseConfig> }[] = [
  { label: 'i4 w256 (auto)', layout: {} },
  { label: 'i1 w256', layout: { itemsPerThread: 1 } },
  { label: 'i8 w256', layout: { itemsPerThread: 8 } },
  { label: 'i4 w128', layout: { workgroupSize: 128 } },
  // 132 SMs × 8 resident workgroups of 256: one wave of a persistent grid that strides
  { label: 'i4 w256 g1056', layout: { maxWorkgroups: 1056 } },
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
function affine(x: tf.Tensor, a: number, b: number, layout: ElementwiseConfig): tf.Tensor {
  registerKernelsOnce([
    {
      kernelName: AFFINE,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const t = inputs.x as tf.TensorInfo;
        const at = attrs as unknown as { a: number; b: number };
        return runProgram(
          backend,
          new ElementwiseProgram(affineSpec, t.shape, layoutOf(attrs)),
          [t],
          [
            { type: 'float32', data: [at.a] },
            { type: 'float32', data: [at.b] },
          ],
        );
      },
    },
  ]);
  return tf.engine().runKernel(AFFINE, { x }, { a, b, ...layout } as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/** The last TAIL elements of `t`, flat (the grid-stride tail is where a layout bug would show). */
const tail = (t: tf.Tensor): tf.Tensor =>
  tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [Math.max(0, t.size - TAIL)], [Math.min(TAIL, t.size)]));

interface Case {
  op: string;
  bytes: number;
  elements: number;
  fn: (layout: ElementwiseConfig) => tf.Tensor;
  /** The same result from tfjs-core ops, for the accuracy check of every layout. */
  ref: () => tf.Tensor;
}

export async function runElementwiseBench(o: RunnerOptions): Promise<ElementwiseRow[]> {
  registerCoreKernels(); // the gradient kernel is launched directly below
  const gpu = tf.getBackend() === 'webgpu';
  const launches = o.quick ? 5 : LAUNCHES;
  const rows: ElementwiseRow[] = [];
  const add = (row: ElementwiseRow) => {
    const peak = devicePeakMB(); // of the point `checked` ran last: this row's
    const err = row.relErr == null ? '' : `, rel err ${row.relErr.toExponential(1)}`;
    o.log(
      `  ${row.op} [${row.variant}]: ${row.ms == null ? `failed (${row.error})` : `${row.ms.toFixed(3)} ms, ${row.gbps?.toPrecision(3)} GB/s${err}`}`,
    );
    const done = rounded(peak != null ? { ...row, devicePeakMB: peak } : row);
    rows.push(done);
    o.onRow?.(done);
  };
  const measure = async (
    op: string,
    variant: string,
    elements: number,
    bytes: number,
    fn: () => tf.Tensor,
    ref?: tf.Tensor,
    layout?: ElementwiseConfig,
  ) => {
    const set = layout ? { layout } : {};
    let row: ElementwiseRow;
    try {
      const { e, runs } = await checked(async () => {
        let e: number | undefined;
        if (ref != null) {
          const y = tf.tidy(() => tail(fn()));
          e = await relErr(y, ref);
          y.dispose();
        }
        // ms per launch of RUNS loops of `launches` queued launches (after 2 untimed loops that compile and fill the pool)
        return { e, runs: await timeRuns(fn, { runs: RUNS, warmup: 2, reps: launches }) };
      });
      const ms = median(runs);
      row = { op, elements, variant, ...set, ms, gbps: bytes / ms / 1e6, bytes, runs, ...(e != null ? { relErr: e } : {}) };
    } catch (err) {
      row = { op, elements, variant, ...set, ms: null, gbps: null, bytes, runs: [], error: errorText(err) };
    }
    // outside the try: a results file that cannot be written stops the bench, it is no failed point
    add(row);
  };

  for (const n of pickSizes([o.quick ? 2 ** 20 : 2 ** 26], o.sizes)) {
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

    // tfjs's own kernels as a user writes them, timed like ours: `tf.add(x, 1)` builds and uploads
    // the scalar on every call, so the scalar is also given prebuilt (the kernel's own cost)
    const one = tf.scalar(1);
    await measure('tf.add(x, 1)', 'tfjs', n, 2 * f4 * n, () => tf.tidy(() => tf.add(x, 1)));
    await measure('tf.add(x, c)', 'tfjs', n, 2 * f4 * n, () => tf.add(x, one));
    await measure('tf.add(x, y)', 'tfjs', n, 3 * f4 * n, () => tf.add(x, y));
    await measure('tf.relu(x)', 'tfjs', n, 2 * f4 * n, () => tf.relu(x));
    one.dispose();

    const C = Math.sqrt(2 / Math.PI);
    const geluRef = (v: tf.Tensor) => tf.mul(tf.mul(0.5, v), tf.add(1, tf.tanh(tf.mul(C, tf.add(v, tf.mul(0.044715, tf.pow(v, 3)))))));
    const cases: Case[] = [
      { op: 'geluTanh', bytes: 2 * f4 * n, elements: n, fn: (layout) => geluTanh(x, { layout }), ref: () => geluRef(x) },
      {
        op: 'geluTanh grad',
        bytes: 3 * f4 * n,
        elements: n,
        fn: (layout) => tf.engine().runKernel(GELU_TANH_GRAD, { dy: y, x }, { ...layout } as unknown as tf.NamedAttrMap) as tf.Tensor,
        ref: () => tf.mul(y, tf.grad(geluRef)(x)),
      },
      {
        op: 'gatedAdd',
        bytes: 3 * f4 * m3,
        elements: m3,
        fn: (layout) => gatedAdd(x3, y3, ada, 2, { layout }),
        ref: () => gatedAddRef(x3, y3, ada, 2),
      },
      {
        op: 'adaNorm',
        bytes: 2 * f4 * m3,
        elements: m3,
        fn: (layout) => adaNorm(x3, ada, 0, 1, 1e-6, { layout }),
        ref: () => adaNormRef(x3, ada, 0, 1),
      },
    ];
    if (gpu)
      cases.push({
        op: 'affine x*a+b',
        bytes: 2 * f4 * n,
        elements: n,
        fn: (layout) => affine(x, 0.5, 1, layout),
        ref: () => tf.add(tf.mul(x, 0.5), 1),
      });

    for (const c of cases) {
      if (!gpu) {
        await measure(c.op, 'js', c.elements, c.bytes, () => c.fn(resolveElementwiseLayout()));
        continue;
      }
      let ref: tf.Tensor | undefined;
      try {
        ref = tf.tidy(() => tail(c.ref()));
      } catch {
        ref = undefined; // the reference did not fit: the rows go unchecked (no relErr)
      }
      for (const v of VARIANTS) {
        const layout = resolveElementwiseLayout(v.layout);
        await measure(c.op, v.label, c.elements, c.bytes, () => c.fn(layout), ref, layout);
      }
      ref?.dispose();
    }
    tf.dispose([x, y, x3, y3, ada]);
  }
  return rows;
}

/** A row as the results file holds it: ms to 0.1 µs, GB/s to 4 significant digits. */
const rounded = (r: ElementwiseRow): ElementwiseRow => ({
  ...r,
  ms: r.ms == null ? null : round(r.ms, 4),
  gbps: r.gbps == null ? null : Number(r.gbps.toPrecision(4)),
  runs: r.runs.map((x) => round(x, 4)),
});

export function elementwiseTable(rows: readonly ElementwiseRow[]): string {
  return formatTable(rows, [
    ['op', (r) => r.op],
    ['elements', (r) => String(r.elements)],
    ['variant', (r) => r.variant],
    ['ms', (r) => (r.ms == null ? '—' : r.ms.toFixed(3))],
    ['GB/s', (r) => (r.gbps == null ? '—' : r.gbps.toPrecision(3))],
    ['rel err', (r) => (r.error ? `failed: ${r.error.slice(0, 40)}` : r.relErr != null ? r.relErr.toExponential(1) : '')],
  ]);
}
