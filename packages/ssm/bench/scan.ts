/**
 * Benchmark of the scan ops on WebGPU: a correctness check against the tfjs-ops reference at a
 * moderate size, then ssdScan forward and forward+backward at b=1, L ∈ {4096, 16384, 32400}, 36 heads
 * × headdim 64, d_state 256, ngroups 1, chunk sizes {64, 128, 256}; the reference where it fits; and
 * selectiveScan. Medians of several runs, each synced by reading back one element of the result.
 *
 *   node scan.mjs [--json FILE] [--quick]
 */
import { writeFileSync } from 'node:fs';
import { initBackend } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
// Bundled for the GPU machine (no node_modules there): Dawn's binding is imported statically and
// navigator.gpu set before initBackend loads the tfjs WebGPU backend.
import { create, globals } from 'webgpu';
import { selectiveScan } from '../src/selective/index.js';
import { ssdScan } from '../src/ssd/index.js';
import { ssdScanRef } from '../src/ssd/reference.js';

const args = process.argv.slice(2);
const jsonPath = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
const quick = args.includes('--quick');
// --tiny: a smoke run of the script itself at toy sizes (e.g. on SwiftShader)
const tiny = args.includes('--tiny');

interface Row {
  op: string;
  impl: string;
  L: number;
  chunkSize?: number;
  pass: 'forward' | 'forward+backward';
  ms: number | null;
  runs: number[];
  gbps: number | null;
  note?: string;
}

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}
function rand(shape: number[], lo: number, hi: number, seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const r = rng(seed);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = lo + (hi - lo) * r();
  return tf.tensor(v, shape);
}

async function sync(t: tf.Tensor): Promise<void> {
  const one = tf.slice(tf.reshape(t, [-1]), [t.size - 1], [1]);
  await one.data();
  one.dispose();
}

async function timeIt(fn: () => tf.Tensor[], reps: number, warm = 2): Promise<number[]> {
  for (let i = 0; i < warm; i++) {
    const out = fn();
    await sync(out[0]);
    tf.dispose(out);
  }
  const runs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const out = fn();
    await sync(out[0]);
    runs.push(performance.now() - t0);
    tf.dispose(out);
  }
  return runs;
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let n = 0;
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    n += (a[i] - b[i]) ** 2;
    d += b[i] ** 2;
  }
  return Math.sqrt(n) / Math.max(Math.sqrt(d), 1e-30);
};

function ssdInputs(L: number, H: number, P: number, N: number, G: number, seed: number) {
  return {
    x: rand([1, L, H, P], -1, 1, seed),
    dt: rand([1, L, H], -4, -1, seed + 1),
    A: rand([H], -8, -1, seed + 2),
    B: rand([1, L, G, N], -1, 1, seed + 3),
    C: rand([1, L, G, N], -1, 1, seed + 4),
    D: rand([H], 0.5, 1.5, seed + 5),
    dtBias: rand([H], -1, 1, seed + 6),
  };
}

async function correctness(): Promise<Record<string, number>> {
  const L = tiny ? 100 : 1000;
  const H = tiny ? 2 : 8;
  const P = tiny ? 8 : 64;
  const N = tiny ? 16 : 64;
  const inp = { ...ssdInputs(L, H, P, N, 2, 7), z: rand([1, L, H, P], -2, 2, 99), initialStates: rand([1, H, P, N], -1, 1, 98) };
  const opts = { chunkSize: 128, dtSoftplus: true, returnFinalStates: true };
  const errs: Record<string, number> = {};
  const a = ssdScan(inp, opts);
  const r = ssdScanRef(inp, opts);
  errs.y = relErr(await a.y.data(), await r.y.data());
  errs.finalStates = relErr(await a.finalStates!.data(), await r.finalStates!.data());
  tf.dispose([a.y, a.finalStates!, r.y, r.finalStates!]);
  const names = Object.keys(inp) as (keyof typeof inp)[];
  const w = rand([1, L, H, P], -1, 1, 5);
  const loss =
    (op: typeof ssdScan) =>
    (...xs: tf.Tensor[]) => {
      const o = op(Object.fromEntries(names.map((k, i) => [k, xs[i]])) as never, opts);
      return tf.add(tf.sum(tf.mul(o.y, w)), tf.sum(o.finalStates!));
    };
  const g1 = tf.grads(loss(ssdScan))(names.map((k) => inp[k]));
  const g2 = tf.grads(loss(ssdScanRef))(names.map((k) => inp[k]));
  for (let i = 0; i < names.length; i++) errs[`d${names[i]}`] = relErr(await g1[i].data(), await g2[i].data());
  tf.dispose([...g1, ...g2, w, ...Object.values(inp)]);
  return errs;
}

async function main() {
  if ((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu == null) {
    Object.assign(globalThis, globals);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true, writable: true });
  }
  const info = await initBackend({ backend: 'webgpu' });
  console.log(`backend ${info.backend}, adapter ${JSON.stringify(info.adapter)}`);
  const t0 = performance.now();
  const check = await correctness();
  console.log(
    `correctness (L=${tiny ? 100 : 1000}, G=2, chunk 128, z, D, dtBias, init) vs reference, rel err: ${JSON.stringify(check)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );

  const H = tiny ? 2 : 36;
  const P = tiny ? 8 : 64;
  const N = tiny ? 16 : 256;
  const rows: Row[] = [];
  const lens = tiny ? [300] : quick ? [4096] : [4096, 16384, 32400];
  const reps = tiny ? 2 : quick ? 3 : 7;
  const add = (row: Row) => {
    rows.push(row);
    console.log(
      `${row.op.padEnd(13)} ${row.impl.padEnd(9)} L=${String(row.L).padEnd(6)} Q=${String(row.chunkSize ?? '-').padEnd(4)} ${row.pass.padEnd(17)} ${row.ms == null ? 'n/a' : `${row.ms.toFixed(2)} ms`}${row.gbps == null ? '' : `  ${row.gbps.toFixed(0)} GB/s`}${row.note ? `  (${row.note})` : ''}`,
    );
  };
  for (const L of lens) {
    const inp = ssdInputs(L, H, P, N, 1, L);
    const fwdBytes = 4 * (2 * L * H * P + 2 * L * N + L * H); // read x, B, C, dt; write y
    const bwdBytes = fwdBytes + 4 * (2 * L * H * P + 2 * L * N + L * H); // + dy in, dx dB dC ddt out
    const dy = rand([1, L, H, P], -1, 1, 3);
    const names = ['x', 'dt', 'A', 'B', 'C', 'D', 'dtBias'] as const;
    for (const Q of [64, 128, 256]) {
      const opts = { chunkSize: Q, dtSoftplus: true };
      try {
        const f = await timeIt(() => [ssdScan(inp, opts).y], reps);
        add({ op: 'ssdScan', impl: 'webgpu', L, chunkSize: Q, pass: 'forward', ms: median(f), runs: f, gbps: fwdBytes / median(f) / 1e6 });
        const fb = await timeIt(
          () =>
            tf.grads((...xs: tf.Tensor[]) =>
              tf.sum(tf.mul(ssdScan(Object.fromEntries(names.map((k, i) => [k, xs[i]])) as never, opts).y, dy)),
            )(names.map((k) => inp[k])),
          reps,
        );
        add({
          op: 'ssdScan',
          impl: 'webgpu',
          L,
          chunkSize: Q,
          pass: 'forward+backward',
          ms: median(fb),
          runs: fb,
          gbps: bwdBytes / median(fb) / 1e6,
        });
      } catch (err) {
        add({
          op: 'ssdScan',
          impl: 'webgpu',
          L,
          chunkSize: Q,
          pass: 'forward',
          ms: null,
          runs: [],
          gbps: null,
          note: String(err).slice(0, 200),
        });
      }
    }
    if (L <= 16384) {
      const Q = 128;
      const opts = { chunkSize: Q, dtSoftplus: true };
      try {
        const f = await timeIt(() => [ssdScanRef(inp, opts).y], 3, 1);
        add({
          op: 'ssdScan',
          impl: 'tfjs-ref',
          L,
          chunkSize: Q,
          pass: 'forward',
          ms: median(f),
          runs: f,
          gbps: fwdBytes / median(f) / 1e6,
        });
        if (L <= 4096) {
          const fb = await timeIt(
            () =>
              tf.grads((...xs: tf.Tensor[]) =>
                tf.sum(tf.mul(ssdScanRef(Object.fromEntries(names.map((k, i) => [k, xs[i]])) as never, opts).y, dy)),
              )(names.map((k) => inp[k])),
            3,
            1,
          );
          add({
            op: 'ssdScan',
            impl: 'tfjs-ref',
            L,
            chunkSize: Q,
            pass: 'forward+backward',
            ms: median(fb),
            runs: fb,
            gbps: bwdBytes / median(fb) / 1e6,
          });
        }
      } catch (err) {
        add({
          op: 'ssdScan',
          impl: 'tfjs-ref',
          L,
          chunkSize: Q,
          pass: 'forward',
          ms: null,
          runs: [],
          gbps: null,
          note: String(err).slice(0, 200),
        });
      }
    }
    tf.dispose([dy, ...Object.values(inp)]);
    // Mamba-1 selective scan at the same width (dim = 36·64 = 2304), d_state 16 (Mamba-1's default)
    try {
      const dim = H * P;
      const Ns = tiny ? 4 : 16;
      const si = {
        u: rand([1, dim, L], -1, 1, 11),
        delta: rand([1, dim, L], -4, -1, 12),
        A: rand([dim, Ns], -8, -1, 13),
        B: rand([1, Ns, L], -1, 1, 14),
        C: rand([1, Ns, L], -1, 1, 15),
        D: rand([dim], 0.5, 1.5, 16),
      };
      const bytes = 4 * (3 * dim * L + 2 * Ns * L);
      const f = await timeIt(() => [selectiveScan(si, { deltaSoftplus: true }).y], reps);
      add({
        op: 'selectiveScan',
        impl: 'webgpu',
        L,
        pass: 'forward',
        ms: median(f),
        runs: f,
        gbps: bytes / median(f) / 1e6,
        note: `dim ${dim}, d_state ${Ns}`,
      });
      const snames = ['u', 'delta', 'A', 'B', 'C', 'D'] as const;
      const sdy = rand([1, dim, L], -1, 1, 17);
      const fb = await timeIt(
        () =>
          tf.grads((...xs: tf.Tensor[]) =>
            tf.sum(tf.mul(selectiveScan(Object.fromEntries(snames.map((k, i) => [k, xs[i]])) as never, { deltaSoftplus: true }).y, sdy)),
          )(snames.map((k) => si[k])),
        reps,
      );
      add({
        op: 'selectiveScan',
        impl: 'webgpu',
        L,
        pass: 'forward+backward',
        ms: median(fb),
        runs: fb,
        gbps: (2 * bytes) / median(fb) / 1e6,
        note: `dim ${dim}, d_state ${Ns}`,
      });
      tf.dispose([sdy, ...Object.values(si)]);
    } catch (err) {
      add({ op: 'selectiveScan', impl: 'webgpu', L, pass: 'forward', ms: null, runs: [], gbps: null, note: String(err).slice(0, 200) });
    }
  }
  // GPU-side times per pass (timestamp queries through tf.time) and back-to-back throughput: the
  // wall-clock medians above include one readback round trip each.
  const profile: Record<string, unknown>[] = [];
  for (const L of tiny ? [300] : [16384, 32400]) {
    const inp = ssdInputs(L, H, P, N, 1, L);
    const dy = rand([1, L, H, P], -1, 1, 3);
    const names = ['x', 'dt', 'A', 'B', 'C', 'D', 'dtBias'] as const;
    for (const Q of tiny ? [64] : [128, 256]) {
      const opts = { chunkSize: Q, dtSoftplus: true };
      const fwd = () => ssdScan(inp, opts).y;
      const fb = () =>
        tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(ssdScan(Object.fromEntries(names.map((k, i) => [k, xs[i]])) as never, opts).y, dy)))(
          names.map((k) => inp[k]),
        );
      for (const [pass, fn] of [
        ['forward', () => [fwd()]],
        ['forward+backward', fb],
      ] as const) {
        try {
          let out: tf.Tensor[] = [];
          // the backend's own timer: its result also lists each program's GPU time
          const info = (await (tf.backend() as unknown as { time(f: () => void): Promise<tf.TimingInfo> }).time(() => {
            out = fn();
          })) as tf.TimingInfo;
          await sync(out[0]);
          tf.dispose(out);
          // tfjs gives "name: ms, name: ms, ..." in dispatch order
          const extraText = (info as unknown as { getExtraProfileInfo?: () => string }).getExtraProfileInfo?.() ?? '';
          const extra = extraText
            .split(', ')
            .map((e) => e.split(': '))
            .filter((e) => e.length === 2)
            .map(([name, ms]) => ({ name, ms: Number(ms) }));
          const k = 10;
          const t0 = performance.now();
          let last: tf.Tensor[] = [];
          for (let r = 0; r < k; r++) {
            tf.dispose(last);
            last = fn();
          }
          await sync(last[0]);
          const amortized = (performance.now() - t0) / k;
          tf.dispose(last);
          const gpuMs = typeof info.kernelMs === 'number' ? info.kernelMs : null;
          const passes = extra.length > 0 ? extra.map((e) => ({ name: e.name, ms: Number(e.ms.toFixed(3)) })) : null;
          profile.push({ op: 'ssdScan', L, chunkSize: Q, pass, gpuKernelMs: gpuMs, amortizedWallMs: amortized, passes });
          console.log(
            `profile ssdScan L=${L} Q=${Q} ${pass}: GPU kernels ${gpuMs?.toFixed(2)} ms, ${k} back-to-back ${amortized.toFixed(2)} ms each`,
          );
          if (passes)
            console.log(
              `  ${passes
                .filter((p) => p.ms > 0.05)
                .map((p) => `${p.name.replace('t2md_ssd_', '')} ${p.ms}`)
                .join(', ')}`,
            );
        } catch (err) {
          profile.push({ op: 'ssdScan', L, chunkSize: Q, pass, error: String(err).slice(0, 200) });
        }
      }
    }
    tf.dispose([dy, ...Object.values(inp)]);
  }
  const result = {
    device: info.backend,
    adapter: info.adapter ?? null,
    shape: { batch: 1, nheads: H, headdim: P, dstate: N, ngroups: 1, dtype: 'float32' },
    correctness: check,
    scan: rows,
    profile,
    date: new Date().toISOString(),
  };
  if (jsonPath) writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
