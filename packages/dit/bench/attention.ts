/**
 * Benchmark of `attention` on WebGPU (PixArt-XL/2 shapes: 16 heads x L tokens x head dim 72, batch 1, f32).
 *
 *   node attention.mjs [--json FILE] [--sizes 1024,4096,16384,32400] [--runs 5] [--no-variants] [--check-tokens 1024]
 *
 * 1. Checks correctness at a moderate size against the tfjs-ops reference (outputs and gradients).
 * 2. Times the forward and forward+backward at each size (median of several runs, wall clock to a
 *    1-element readback, so every queued kernel has finished), and the naive tfjs matmul-softmax-matmul
 *    where its L x L scores fit.
 * 3. Times the forward at 16,384 tokens and the backward at 4,096 with other tile sizes, to show what
 *    the tiles move.
 * Prints a table and writes JSON naming the adapter.
 */
import { writeFileSync } from 'node:fs';
import { initBackend } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
// A static import, so the bundle for the GPU machine (no node_modules there) carries Dawn's binding;
// initBackend then finds navigator.gpu already set.
import { create, globals } from 'webgpu';
import { type AttentionTiles, currentAttentionTiles, setAttentionTiles } from '../src/attention/attention-webgpu.js';
import { attention, attentionRef } from '../src/attention/index.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] != null ? (args[i + 1] as string) : dflt;
};
const jsonPath = opt('json', '');
const sizes = opt('sizes', '1024,4096,16384,32400').split(',').map(Number);
const runs = Number(opt('runs', '5'));
const heads = 16;
const dh = 72;

if ((process.env.T2MD_BACKEND ?? 'webgpu') === 'webgpu') {
  Object.assign(globalThis, globals);
  const flags = (process.env.T2MD_DAWN_FLAGS ?? '').split(';').filter(Boolean);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: create(flags) }, configurable: true, writable: true });
}
const info = await initBackend({ backend: (process.env.T2MD_BACKEND as 'webgpu') ?? 'webgpu' });
console.log(`backend ${info.backend}, adapter ${JSON.stringify(info.adapter ?? {})}, software ${info.software}`);

/** Waits for everything queued before `t` by reading back one element of it. */
async function sync(t: tf.Tensor): Promise<void> {
  const one = tf.slice(t, new Array(t.rank).fill(0), new Array(t.rank).fill(1));
  await one.data();
  one.dispose();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function timeIt(n: number, f: () => tf.Tensor[]): Promise<number[]> {
  const ms: number[] = [];
  for (let r = 0; r < n + 1; r++) {
    const t0 = performance.now();
    const outs = f();
    await sync(outs[0] as tf.Tensor);
    const dt = performance.now() - t0;
    tf.dispose(outs);
    if (r > 0) ms.push(dt); // the first run compiles the pipelines
  }
  return ms;
}

const relErr = async (a: tf.Tensor, b: tf.Tensor) => {
  const [x, y] = [await a.data(), await b.data()];
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    num += ((x[i] as number) - (y[i] as number)) ** 2;
    den += (y[i] as number) ** 2;
  }
  return Math.sqrt(num) / Math.sqrt(den);
};

// 1. Correctness at a moderate size (the reference holds the 4 x 1024 x 1024 scores).
const check = await (async () => {
  const L = Number(opt('check-tokens', '1024'));
  const H = 4;
  const q = tf.randomNormal([1, H, L, dh]);
  const k = tf.randomNormal([1, H, L, dh]);
  const v = tf.randomNormal([1, H, L, dh]);
  const dy = tf.randomNormal([1, H, L, dh]);
  const keyMask = tf.tensor(
    Array.from({ length: L }, (_, i) => i % 7 !== 3),
    [1, L],
    'bool',
  );
  const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attention(a, b, c, { keyMask });
  const fr = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attentionRef(a, b, c, { keyMask });
  const y = f(q, k, v);
  const yr = fr(q, k, v);
  const g = tf.grads(f)([q, k, v], dy);
  const gr = tf.grads(fr)([q, k, v], dy);
  const res = {
    heads: H,
    tokens: L,
    headDim: dh,
    masked: true,
    outRelErr: await relErr(y, yr),
    dqRelErr: await relErr(g[0] as tf.Tensor, gr[0] as tf.Tensor),
    dkRelErr: await relErr(g[1] as tf.Tensor, gr[1] as tf.Tensor),
    dvRelErr: await relErr(g[2] as tf.Tensor, gr[2] as tf.Tensor),
  };
  tf.dispose([q, k, v, dy, keyMask, y, yr, ...g, ...gr]);
  return { ...res, ok: res.outRelErr < 1e-4 && res.dqRelErr < 1e-3 && res.dkRelErr < 1e-3 && res.dvRelErr < 1e-3 };
})();
console.log(`check vs tfjs-ops reference (4 heads x ${check.tokens} x 72, masked): ${JSON.stringify(check)}`);

// 2. Timings.
interface Row {
  batch: number;
  heads: number;
  tokens: number;
  headDim: number;
  fwdMs: number | null;
  fwdBwdMs: number | null;
  fwdTflops: number | null;
  fwdRuns: number[];
  fwdBwdRuns: number[];
  naiveFwdMs: number | null;
  error?: string;
}
const rows: Row[] = [];
for (const L of sizes) {
  const row: Row = {
    batch: 1,
    heads,
    tokens: L,
    headDim: dh,
    fwdMs: null,
    fwdBwdMs: null,
    fwdTflops: null,
    fwdRuns: [],
    fwdBwdRuns: [],
    naiveFwdMs: null,
  };
  const q = tf.randomNormal([1, heads, L, dh]);
  const k = tf.randomNormal([1, heads, L, dh]);
  const v = tf.randomNormal([1, heads, L, dh]);
  const dy = tf.randomNormal([1, heads, L, dh]);
  const n = L >= 16384 ? Math.max(3, runs - 2) : runs;
  console.log(`timing ${heads} x ${L} x ${dh} (${n} runs after a warm-up)`);
  try {
    row.fwdRuns = await timeIt(n, () => [attention(q, k, v)]);
    row.fwdMs = median(row.fwdRuns);
    console.log(`  forward ${row.fwdMs.toFixed(2)} ms`);
    row.fwdTflops = (4 * L * L * dh * heads) / (row.fwdMs * 1e-3) / 1e12;
    row.fwdBwdRuns = await timeIt(n, () => tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attention(a, b, c))([q, k, v], dy));
    row.fwdBwdMs = median(row.fwdBwdRuns);
    console.log(`  forward+backward ${row.fwdBwdMs.toFixed(2)} ms`);
    if (heads * L * L * 4 <= 2 ** 31 - 4) {
      row.naiveFwdMs = median(await timeIt(n, () => [attentionRef(q, k, v)]));
    }
  } catch (err) {
    row.error = (err as Error).message;
  }
  tf.dispose([q, k, v, dy]);
  rows.push(row);
  console.log(JSON.stringify(row));
}

// 3. Tile variants: the forward at 16,384 tokens, the backward (forward+backward) at 4,096.
const variants: { tiles: AttentionTiles; tokens: number; pass: string; ms: number }[] = [];
if (!args.includes('--no-variants') && info.backend === 'webgpu') {
  const base = currentAttentionTiles();
  const trial = async (L: number, pass: 'forward' | 'forward+backward', sets: Partial<AttentionTiles>[]) => {
    const [q, k, v, dy] = [0, 1, 2, 3].map(() => tf.randomNormal([1, heads, L, dh]));
    for (const t of sets) {
      setAttentionTiles({ ...base, ...t });
      const f =
        pass === 'forward'
          ? () => [attention(q as tf.Tensor, k as tf.Tensor, v as tf.Tensor)]
          : () => tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attention(a, b, c))([q, k, v] as tf.Tensor[], dy);
      const ms = median(await timeIt(3, f));
      variants.push({ tiles: currentAttentionTiles(), tokens: L, pass, ms });
      console.log(`tiles ${JSON.stringify(t)}: ${pass} at ${L} tokens ${ms.toFixed(1)} ms`);
    }
    setAttentionTiles(base);
    tf.dispose([q, k, v, dy] as tf.Tensor[]);
  };
  await trial(16384, 'forward', [
    { rows: 128, tile: 32, group: 8 },
    { rows: 128, tile: 32, group: 4 },
    { rows: 256, tile: 32, group: 8 },
    { rows: 128, tile: 16, group: 8 },
    { rows: 64, tile: 32, group: 4 },
  ]);
  await trial(4096, 'forward+backward', [
    { bwdRows: 128, bwdGroup: 2 },
    { bwdRows: 128, bwdGroup: 1 },
    { bwdRows: 128, bwdGroup: 4 },
    { bwdRows: 64, bwdGroup: 2 },
    { bwdRows: 128, bwdGroup: 8 },
  ]);
}

console.log('\n| heads x tokens x dh | forward ms | TFLOP/s | fwd+bwd ms | naive tfjs fwd ms |');
console.log('|---|---|---|---|---|');
for (const r of rows) {
  const f = (x: number | null, d = 1) => (x == null ? '—' : x.toFixed(d));
  console.log(
    `| ${r.heads} x ${r.tokens} x ${r.headDim} | ${f(r.fwdMs)} | ${f(r.fwdTflops, 2)} | ${f(r.fwdBwdMs)} | ${f(r.naiveFwdMs)} |${r.error ? ` error: ${r.error}` : ''}`,
  );
}

const doc = {
  impl: 't2md-webgpu',
  device: info.backend,
  adapter: info.adapter ?? null,
  software: info.software,
  dawnFlags: process.env.T2MD_DAWN_FLAGS ?? '',
  tiles: currentAttentionTiles(),
  date: new Date().toISOString(),
  dtype: 'float32',
  check,
  attention: rows,
  variants,
};
if (jsonPath) writeFileSync(jsonPath, `${JSON.stringify(doc, null, 2)}\n`);
// A global navigator (Dawn) keeps Node alive.
process.exit(check.ok ? 0 : 1);
