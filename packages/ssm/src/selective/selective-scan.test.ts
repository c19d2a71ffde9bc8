import { InputError } from '@t2md/core';
import {
  describeInfo,
  freshSeed,
  hostBuiltSizes,
  randomArray,
  relErr,
  testBackends,
  tryBackend,
  useBackend,
  withNoLeaks,
} from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { goldenCases } from '../golden-files.js';
import { selectiveScanRef } from './reference.js';
import { type ForwardArrays, selectiveScanForward } from './scan-js.js';
import { type SelectiveScanInputs, type SelectiveScanOptions, selectiveScan } from './selective-scan.js';

/** Tolerances (‖a − b‖ / ‖b‖, float32): the contract's, for outputs and gradients. */
const TOL = { out: 1e-4, grad: 1e-3 };
const NAMES = ['u', 'delta', 'A', 'B', 'C', 'D', 'z', 'deltaBias'] as const;
type Name = (typeof NAMES)[number];
type Arrays = Partial<Record<Name, { shape: number[]; data: Float32Array }>>;

function toTensors(a: Arrays): SelectiveScanInputs {
  const t: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(a)) if (v) t[k] = tf.tensor(v.data, v.shape);
  return t as unknown as SelectiveScanInputs;
}

type ScanFn = typeof selectiveScan;

/**
 * Forward outputs and the gradients of loss = Σ y·wy + Σ lastState·wl with respect to every input
 * present, read back as arrays. Runs on the current backend and disposes what it makes.
 */
async function runWithGrads(fn: ScanFn, arrays: Arrays, options: SelectiveScanOptions, wy: tf.Tensor, wl: tf.Tensor) {
  const inputs = toTensors(arrays);
  const names = NAMES.filter((n) => inputs[n] != null);
  const xs = names.map((n) => inputs[n] as tf.Tensor);
  const { y, lastState } = fn(inputs, { ...options, returnLastState: true });
  const loss = (...v: tf.Tensor[]) => {
    const given = Object.fromEntries(names.map((n, i) => [n, v[i]])) as unknown as SelectiveScanInputs;
    const r = fn(given, { ...options, returnLastState: true });
    return tf.add(tf.sum(tf.mul(r.y, wy)), tf.sum(tf.mul(r.lastState!, wl))) as tf.Scalar;
  };
  const grads = tf.grads(loss)(xs);
  const out = {
    y: (await y.data()) as Float32Array,
    lastState: (await lastState!.data()) as Float32Array,
    grads: {} as Record<string, Float32Array>,
  };
  for (let i = 0; i < names.length; i++) out.grads[names[i]] = (await grads[i].data()) as Float32Array;
  tf.dispose([y, lastState!, ...grads, ...xs]);
  return out;
}

interface Case {
  label: string;
  batch: number;
  dim: number;
  dstate: number;
  seqlen: number;
  ngroups: number | null; // null: B, C of rank 3
  D?: boolean;
  z?: boolean;
  bias?: boolean;
  softplus?: boolean;
  strong?: boolean; // A so negative that exp(δA) underflows to 0
  chunkSize?: number;
}

const CASES: Case[] = [
  { label: 'plain, rank-3 B and C', batch: 2, dim: 3, dstate: 4, seqlen: 37, ngroups: null, chunkSize: 8 },
  {
    label: 'groups, D, z, deltaBias, softplus',
    batch: 1,
    dim: 6,
    dstate: 5,
    seqlen: 45,
    ngroups: 3,
    D: true,
    z: true,
    bias: true,
    softplus: true,
  },
  {
    label: 'strong decay, dstate over one register tile',
    batch: 1,
    dim: 2,
    dstate: 19,
    seqlen: 33,
    ngroups: 1,
    D: true,
    softplus: true,
    strong: true,
    chunkSize: 16,
  },
  { label: 'seqlen 1', batch: 2, dim: 2, dstate: 3, seqlen: 1, ngroups: 2, z: true, bias: true },
];

function randomCase(c: Case, seed: number): Arrays {
  const { batch, dim, dstate, seqlen } = c;
  const bl = c.ngroups == null ? [batch, dstate, seqlen] : [batch, c.ngroups, dstate, seqlen];
  const n = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const mk = (shape: number[], k: number, lo = -1, hi = 1) => ({ shape, data: randomArray(n(shape), seed + 7919 * k, lo, hi) });
  const A = mk([dim, dstate], 3, 0, 1);
  // A = −exp(U): mild decay in [−2.7, −1], or strong in [−e^7, −e^5] where exp(δA) underflows.
  A.data = A.data.map((v) => -Math.exp(c.strong ? 5 + 2 * v : v));
  const a: Arrays = {
    u: mk([batch, dim, seqlen], 1),
    delta: mk([batch, dim, seqlen], 2, c.softplus ? -3 : 0.01, c.softplus ? 1 : c.strong ? 2 : 0.5),
    A,
    B: mk(bl, 4),
    C: mk(bl, 5),
  };
  if (c.D) a.D = mk([dim], 6);
  if (c.z) a.z = mk([batch, dim, seqlen], 8, -3, 3);
  if (c.bias) a.deltaBias = mk([dim], 9, -0.5, 0.5);
  return a;
}

describe.each(testBackends())('selectiveScan on %s', (backend) => {
  it('matches the golden vectors (outputs and gradients)', async (ctx) => {
    const info = await useBackend(backend, ctx);
    console.log(`selectiveScan: running on ${describeInfo(info)}`);
    const cases = goldenCases<SelectiveScanOptions>('selectiveScan');
    expect(cases.length).toBeGreaterThanOrEqual(2);
    for (const g of cases) {
      const arrays: Arrays = {};
      for (const [k, v] of Object.entries(g.inputs)) arrays[k as Name] = { shape: v.shape, data: Float32Array.from(v.data) };
      const wy = tf.tensor(g.upstream.y.data, g.upstream.y.shape);
      const wl = tf.tensor(g.upstream.lastState.data, g.upstream.lastState.shape);
      const got = await withNoLeaks(() => runWithGrads(selectiveScan, arrays, g.options, wy, wl));
      const errs: Record<string, number> = {
        y: relErr(got.y, g.outputs.y.data),
        lastState: relErr(got.lastState, g.outputs.lastState.data),
      };
      for (const k of Object.keys(g.grads)) errs[`d${k}`] = relErr(got.grads[k], g.grads[k].data);
      console.log(
        `selectiveScan golden ${g.name} on ${backend}: ${JSON.stringify(errs, (_, v) => (typeof v === 'number' ? Number(v.toExponential(2)) : v))}`,
      );
      expect(errs.y, g.name).toBeLessThan(TOL.out);
      expect(errs.lastState, g.name).toBeLessThan(TOL.out);
      for (const k of Object.keys(g.grads)) expect(errs[`d${k}`], `${g.name} d${k}`).toBeLessThan(TOL.grad);
      expect(Object.keys(got.grads).sort()).toEqual(Object.keys(g.grads).sort());
      tf.dispose([wy, wl]);
    }
  });

  it('matches the tfjs-ops reference on fresh random inputs, forward and every gradient', async (ctx) => {
    await useBackend(backend, ctx);
    const seed = freshSeed();
    for (const c of CASES) {
      const arrays = randomCase(c, seed);
      const yShape = [c.batch, c.dim, c.seqlen];
      const lShape = [c.batch, c.dim, c.dstate];
      const wyData = randomArray(
        yShape.reduce((a, b) => a * b),
        seed + 11,
      );
      const wlData = randomArray(
        lShape.reduce((a, b) => a * b),
        seed + 13,
      );
      const options: SelectiveScanOptions = { deltaSoftplus: c.softplus ?? false, chunkSize: c.chunkSize };
      // The reference runs on cpu: it is hundreds of tiny ops, slow on a software GPU.
      await tryBackend('cpu');
      let wy = tf.tensor(wyData, yShape);
      let wl = tf.tensor(wlData, lShape);
      const ref = await runWithGrads(selectiveScanRef as ScanFn, arrays, options, wy, wl);
      tf.dispose([wy, wl]);
      await useBackend(backend, ctx);
      wy = tf.tensor(wyData, yShape);
      wl = tf.tensor(wlData, lShape);
      const got = await withNoLeaks(() => runWithGrads(selectiveScan, arrays, options, wy, wl));
      tf.dispose([wy, wl]);
      const what = `${c.label} (seed ${seed})`;
      expect(relErr(got.y, ref.y), what).toBeLessThan(TOL.out);
      expect(relErr(got.lastState, ref.lastState), what).toBeLessThan(TOL.out);
      expect(got.y.every(Number.isFinite), what).toBe(true);
      for (const k of Object.keys(ref.grads)) {
        expect(got.grads[k].every(Number.isFinite), `${what} d${k} finite`).toBe(true);
        expect(relErr(got.grads[k], ref.grads[k]), `${what} d${k}`).toBeLessThan(TOL.grad);
      }
    }
  });
});

describe.each(testBackends())('selectiveScan without lastState on %s', (backend) => {
  it('differentiates y alone like the two-output run, building no state-sized zeros on the host', async (ctx) => {
    await useBackend(backend, ctx);
    const seed = freshSeed();
    const c = CASES[1]; // groups, D, z, deltaBias, softplus
    const arrays = randomCase(c, seed);
    const yShape = [c.batch, c.dim, c.seqlen];
    const wy = tf.tensor(randomArray(c.batch * c.dim * c.seqlen, seed + 11), yShape);
    const wl = tf.zeros([c.batch, c.dim, c.dstate]);
    const options: SelectiveScanOptions = { deltaSoftplus: true };
    // Σ y·wy + Σ lastState·0: the same gradient through the kernel's two-output form
    const both = await runWithGrads(selectiveScan, arrays, options, wy, wl);
    const inputs = toTensors(arrays);
    const names = NAMES.filter((n) => inputs[n] != null);
    const xs = names.map((n) => inputs[n] as tf.Tensor);
    await withNoLeaks(async () => {
      let g: tf.Tensor[] = [];
      const sizes = await hostBuiltSizes(async () => {
        g = tf.grads((...v: tf.Tensor[]) => {
          const given = Object.fromEntries(names.map((n, i) => [n, v[i]])) as unknown as SelectiveScanInputs;
          return tf.sum(tf.mul(selectiveScan(given, options).y, wy)) as tf.Scalar;
        })(xs);
        await Promise.all(g.map((t) => t.data()));
      });
      // lastState has B·D·N elements; the op's own zeros for absent inputs are [D] at most
      expect(Math.max(0, ...sizes), `largest host-built tensor (seed ${seed})`).toBeLessThan(c.batch * c.dim * c.dstate);
      for (let i = 0; i < names.length; i++) {
        expect(relErr(await g[i].data(), both.grads[names[i]]), `d${names[i]} (seed ${seed})`).toBeLessThan(1e-6);
      }
      tf.dispose(g);
    });
    tf.dispose([wy, wl, ...xs]);
  });
});

describe.each(testBackends())('selectiveScan gradients by finite differences on %s', (backend) => {
  it('agrees with central differences of a float64 forward on a tiny case', async (ctx) => {
    await useBackend(backend, ctx);
    const seed = freshSeed();
    const c: Case = {
      label: 'tiny',
      batch: 1,
      dim: 4,
      dstate: 3,
      seqlen: 9,
      ngroups: 2,
      D: true,
      z: true,
      bias: true,
      softplus: true,
      chunkSize: 4,
    };
    const arrays = randomCase(c, seed);
    const dims = { batch: 1, dim: 4, dstate: 3, seqlen: 9, ngroups: 2 };
    const wyData = randomArray(36, seed + 11);
    const wlData = randomArray(12, seed + 13);
    const wy = tf.tensor(wyData, [1, 4, 9]);
    const wl = tf.tensor(wlData, [1, 4, 3]);
    const got = await withNoLeaks(() => runWithGrads(selectiveScan, arrays, { deltaSoftplus: true, chunkSize: 4 }, wy, wl));
    tf.dispose([wy, wl]);
    // The loss in float64 from the plain loops, with every input as float64 values.
    const f64 = Object.fromEntries(Object.entries(arrays).map(([k, v]) => [k, Float64Array.from(v!.data)])) as Record<Name, Float64Array>;
    const loss = () => {
      const { y, lastState } = selectiveScanForward(f64 as unknown as ForwardArrays, dims, true);
      let s = 0;
      for (let i = 0; i < y.length; i++) s += y[i] * wyData[i];
      for (let i = 0; i < lastState.length; i++) s += lastState[i] * wlData[i];
      return s;
    };
    const eps = 1e-5;
    for (const name of NAMES) {
      const v = f64[name];
      const fd = new Float64Array(v.length);
      for (let i = 0; i < v.length; i++) {
        const keep = v[i];
        v[i] = keep + eps;
        const up = loss();
        v[i] = keep - eps;
        const down = loss();
        v[i] = keep;
        fd[i] = (up - down) / (2 * eps);
      }
      expect(relErr(got.grads[name], fd), `d${name} (seed ${seed})`).toBeLessThan(TOL.grad);
    }
  });
});

describe('selectiveScan input checks', () => {
  it('throws one InputError naming the argument and both shapes', async () => {
    await tryBackend('cpu');
    const t = (shape: number[], dtype: 'float32' | 'int32' = 'float32') => tf.zeros(shape, dtype);
    const base = () => ({ u: t([2, 4, 5]), delta: t([2, 4, 5]), A: t([4, 3]), B: t([2, 2, 3, 5]), C: t([2, 2, 3, 5]) });
    const before = tf.memory().numTensors;
    const bad: [string, Partial<SelectiveScanInputs>, RegExp][] = [
      ['u of rank 2', { u: t([4, 5]) }, /u must have rank 3 .*got shape \[4, 5\]/],
      ['delta of another seqlen', { delta: t([2, 4, 6]) }, /delta must have the shape of u \[2, 4, 5\].*got \[2, 4, 6\]/],
      [
        'B of another batch',
        { B: t([3, 2, 3, 5]), C: t([3, 2, 3, 5]) },
        /B must have batch 2 and seqlen 5 like u \[2, 4, 5\], got B \[3, 2, 3, 5\]/,
      ],
      ['B of another seqlen', { B: t([2, 3, 4]) }, /B must have batch 2 and seqlen 5 like u \[2, 4, 5\], got B \[2, 3, 4\]/],
      ['B of rank 2', { B: t([3, 5]) }, /B must have rank 3 .* or 4 .*got shape \[3, 5\]/],
      [
        'groups not dividing dim',
        { B: t([2, 3, 3, 5]), C: t([2, 3, 3, 5]) },
        /ngroups 3, which does not divide dim 4 of u \[2, 4, 5\]; B \[2, 3, 3, 5\]/,
      ],
      ['C unlike B', { C: t([2, 1, 3, 5]) }, /C must have the shape of B \[2, 2, 3, 5\], got \[2, 1, 3, 5\]/],
      ['A of the wrong dstate', { A: t([4, 2]) }, /A must have shape \[4, 3\] .*u \[2, 4, 5\] and B \[2, 2, 3, 5\].*got \[4, 2\]/],
      ['D of the wrong shape', { D: t([3]) }, /D must have shape \[4\] \(\[dim\] of u \[2, 4, 5\]\), got \[3\]/],
      ['deltaBias of rank 2', { deltaBias: t([4, 1]) }, /deltaBias must have shape \[4\] .*got \[4, 1\]/],
      ['z of the wrong shape', { z: t([2, 4, 4]) }, /z must have the shape of u \[2, 4, 5\].*got \[2, 4, 4\]/],
      ['int32 u', { u: t([2, 4, 5], 'int32') }, /u must be float32, got int32/],
      ['int32 D', { D: t([4], 'int32') }, /D must be float32, got int32/],
    ];
    for (const [what, change, message] of bad) {
      const defaults = base();
      const inputs = { ...defaults, ...change } as SelectiveScanInputs;
      let err: unknown;
      try {
        selectiveScan(inputs);
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeInstanceOf(InputError);
      expect((err as Error).message, what).toMatch(message);
      tf.dispose([...Object.values(defaults), ...(Object.values(change) as tf.Tensor[])]);
    }
    const good = base() as SelectiveScanInputs;
    expect(() => selectiveScan(good, { chunkSize: 0 })).toThrow(/chunkSize must be an integer/);
    tf.dispose(Object.values(good) as tf.Tensor[]);
    // a rejected call builds nothing that outlives it
    expect(tf.memory().numTensors).toBe(before);
  });

  it('returns only y unless returnLastState, and leaks nothing', async () => {
    await tryBackend('cpu');
    const a = randomCase({ label: 'x', batch: 1, dim: 2, dstate: 2, seqlen: 4, ngroups: null }, 1);
    const inputs = toTensors(a);
    await withNoLeaks(async () => {
      const r = selectiveScan(inputs);
      expect(r.lastState).toBeUndefined();
      expect(r.y.shape).toEqual([1, 2, 4]);
      r.y.dispose();
    });
    tf.dispose(Object.values(inputs) as tf.Tensor[]);
  });
});
