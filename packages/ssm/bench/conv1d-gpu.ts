/**
 * GPU check of the fused causal conv1d + SiLU (not part of the library or its tests): at the mixer's
 * training shapes, ms per forward and per forward + backward of `causalConv1dSilu` against the old
 * composition `silu(causalConv1d)` (pad + depthwiseConv2d, and tfjs's DepthwiseConv2dNativeBackprop*),
 * whether every output and gradient is finite, and how far the two agree (relDiff: fused against old).
 *   ../shared/device/pack.sh packages/ssm/bench/conv1d-gpu.ts
 *   bash .gpu/run.sh node .gpu/conv1d-gpu.mjs [B,L,C ...]     (default 256,256,384 1024,256,384)
 * Each time is the median over 5 runs of 10 back-to-back calls ended by one 1-element readback.
 */
import { initBackend } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { create, globals } from 'webgpu';
import { causalConv1dSilu } from '../src/mixer/conv1d.js';
import { causalConv1dSiluRef } from '../src/mixer/layers.js';

Object.assign(globalThis, globals);
Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true, writable: true });
await initBackend({ backend: 'webgpu' });

type Conv = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor;
// the default layout, then rows per thread of the forward and dx (default 4) and rows per partial-pass
// thread (default 64 at B = 256, 192 at B = 1024 for C = 384) swept around it
const variant = (label: string, opts: Parameters<typeof causalConv1dSilu>[3]): [string, Conv] => [
  label,
  (x, w, b) => causalConv1dSilu(x, w, b, opts),
];
const IMPLS: [string, Conv][] = [
  ['fused', causalConv1dSilu],
  ...[1, 2, 8].map((T) => variant(`fusedT${T}`, { rowsPerThread: T })),
  ...[16, 32, 128, 512].map((R) => variant(`fusedR${R}`, { rowsPerSegment: R })),
  ['old', causalConv1dSiluRef],
];

async function msPerCall(run: () => tf.Tensor[]): Promise<number> {
  const once = async () => {
    const t0 = performance.now();
    let out: tf.Tensor[] = [];
    for (let i = 0; i < 10; i++) {
      tf.dispose(out);
      out = run();
    }
    const first = tf.slice(tf.reshape(out[0]!, [-1]), [0], [1]);
    await first.data();
    tf.dispose([first, ...out]);
    return (performance.now() - t0) / 10;
  };
  await once(); // compile and warm the buffer pool
  const ms: number[] = [];
  for (let r = 0; r < 5; r++) ms.push(await once());
  return ms.sort((a, b) => a - b)[2]!;
}

async function nonFinite(t: tf.Tensor): Promise<number> {
  const bad = tf.tidy(() => tf.sum(tf.cast(tf.logicalNot(tf.isFinite(t)), 'int32')));
  const n = (await bad.data())[0]!;
  bad.dispose();
  return n;
}

async function relDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const r = tf.tidy(() => tf.div(tf.norm(tf.sub(a, b)), tf.maximum(tf.norm(b), 1e-30)));
  const v = (await r.data())[0]!;
  r.dispose();
  return v;
}

const shapes = (process.argv.length > 2 ? process.argv.slice(2) : ['256,256,384', '1024,256,384']).map((s) => s.split(',').map(Number));
for (const [B, L, C] of shapes as [number, number, number][]) {
  const K = 4;
  const x = tf.randomNormal([B, L, C]);
  const w = tf.mul(tf.randomNormal([C, 1, K]), 0.5);
  const b = tf.mul(tf.randomNormal([C]), 0.1);
  const dy = tf.randomNormal([B, L, C]);
  const row: Record<string, unknown> = { B, L, C, K };
  const results: Record<string, tf.Tensor[]> = {};
  for (const [name, f] of IMPLS) {
    const grads = () => tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => f(a, c, d))([x, w, b], dy);
    try {
      row[`${name}FwdMs`] = Number((await msPerCall(() => [tf.tidy(() => f(x, w, b))])).toFixed(3));
      row[`${name}FwdBwdMs`] = Number((await msPerCall(grads)).toFixed(3));
      results[name] = [tf.tidy(() => f(x, w, b)), ...grads()];
      row[`${name}NonFinite`] = await Promise.all(results[name]!.map(nonFinite)); // [y, dx, dw, db]
    } catch (err) {
      row[`${name}Error`] = (err as Error).message;
    }
  }
  if (results.fused && results.old) {
    row.relDiff = await Promise.all(results.fused.map((t, i) => relDiff(t, results.old![i]!))); // [y, dx, dw, db]
  }
  console.log(JSON.stringify(row));
  tf.dispose([x, w, b, dy, ...Object.values(results).flat()]);
}
process.exit(0);
