import { deviceMemory, InputError, releaseFreeBuffers, resetDevicePeak } from '@t2md/core';
import { describeInfo, freshSeed, hostBuiltSizes, randomTensor, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { ssdGradBound, ssdGradError } from './grad-error.js';
import { ssdScan } from './index.js';
import { ssdScanRef } from './reference.js';
import { makeSsdInputs, SSD_CASES, type SsdCase } from './test-cases.js';
import type { SsdScanInputs, SsdScanOptions } from './types.js';

const CASES = SSD_CASES;

const names = (inp: SsdScanInputs) =>
  Object.keys(inp).filter((k) => (inp as unknown as Record<string, unknown>)[k] != null) as (keyof SsdScanInputs)[];

/** loss = Σ y·wy + Σ finalStates·wf, so every output feeds the gradient. */
function lossFn(op: typeof ssdScan, keys: (keyof SsdScanInputs)[], opts: SsdScanOptions, wy: tf.Tensor, wf: tf.Tensor) {
  return (...xs: tf.Tensor[]) => {
    const o = op(Object.fromEntries(keys.map((k, i) => [k, xs[i]])) as unknown as SsdScanInputs, { ...opts, returnFinalStates: true });
    return tf.add(tf.sum(tf.mul(o.y, wy)), tf.sum(tf.mul(o.finalStates!, wf)));
  };
}

/** What ssdGradError needs to judge dA and ddtBias, read back from the inputs and the reference's gradients. */
async function gradContext(inp: SsdScanInputs, c: SsdCase, keys: (keyof SsdScanInputs)[], gr: tf.Tensor[]) {
  const at = (k: keyof SsdScanInputs) => gr[keys.indexOf(k)]!.data();
  return {
    x: await inp.x.data(),
    dt: await inp.dt.data(),
    A: await inp.A.data(),
    dtBias: inp.dtBias ? await inp.dtBias.data() : undefined,
    dx: await at('x'),
    ddt: await at('dt'),
    H: c.H,
    P: c.P,
    dtSoftplus: c.opts.dtSoftplus === true,
  };
}

describe.each(testBackends())('ssdScan on %s', (backend) => {
  it('matches the tfjs-ops reference on fresh random inputs, forward and every gradient, without leaking', async (ctx) => {
    const info = await useBackend(backend, ctx);
    const seed = freshSeed();
    console.log(`ssdScan vs reference: ${describeInfo(info)}, seed ${seed}`);
    for (const c of CASES) {
      const inp = makeSsdInputs(c, seed);
      const keys = names(inp);
      const wy = randomTensor([c.B, c.L, c.H, c.P], seed + 1);
      const wf = randomTensor([c.B, c.H, c.P, c.N], seed + 2);
      await withNoLeaks(async () => {
        const a = ssdScan(inp, { ...c.opts, returnFinalStates: true });
        const r = ssdScanRef(inp, { ...c.opts, returnFinalStates: true });
        const ey = relErr(await a.y.data(), await r.y.data());
        const ef = relErr(await a.finalStates!.data(), await r.finalStates!.data());
        expect(Number.isFinite(ey) && Number.isFinite(ef), `${c.name}: finite`).toBe(true);
        expect(ey, `${c.name}: y (seed ${seed})`).toBeLessThan(1e-4);
        expect(ef, `${c.name}: finalStates (seed ${seed})`).toBeLessThan(1e-4);
        tf.dispose([a.y, a.finalStates!, r.y, r.finalStates!]);
        const xs = keys.map((k) => inp[k] as tf.Tensor);
        const g = tf.grads(lossFn(ssdScan, keys, c.opts, wy, wf))(xs);
        const gr = tf.grads(lossFn(ssdScanRef, keys, c.opts, wy, wf))(xs);
        const errs: string[] = [];
        const sums = await gradContext(inp, c, keys, gr);
        for (let i = 0; i < keys.length; i++) {
          const e = ssdGradError(keys[i], await g[i].data(), await gr[i].data(), sums);
          errs.push(`d${keys[i]} ${e.toExponential(1)}`);
          expect(e, `${c.name}: gradient of ${keys[i]} (seed ${seed})`).toBeLessThan(ssdGradBound(keys[i]));
        }
        console.log(`  ${c.name}: y ${ey.toExponential(1)}, finalStates ${ef.toExponential(1)}, ${errs.join(', ')}`);
        tf.dispose([...g, ...gr]);
      });
      tf.dispose([wy, wf, ...keys.map((k) => inp[k] as tf.Tensor)]);
    }
  });

  it('without finalStates, differentiates y alone and builds no state-sized zeros on the host', async (ctx) => {
    await useBackend(backend, ctx);
    const seed = freshSeed();
    const c = CASES[1]; // every optional input
    const inp = makeSsdInputs(c, seed);
    const keys = names(inp);
    const xs = keys.map((k) => inp[k] as tf.Tensor);
    const wy = randomTensor([c.B, c.L, c.H, c.P], seed + 1);
    const loss =
      (op: typeof ssdScan) =>
      (...ts: tf.Tensor[]) =>
        tf.sum(tf.mul(op(Object.fromEntries(keys.map((k, i) => [k, ts[i]])) as unknown as SsdScanInputs, c.opts).y, wy));
    await withNoLeaks(async () => {
      let g: tf.Tensor[] = [];
      const sizes = await hostBuiltSizes(async () => {
        g = tf.grads(loss(ssdScan))(xs);
        await Promise.all(g.map((t) => t.data()));
      });
      // finalStates has B·H·P·N elements; only scalars and [1] placeholders may come from the host
      expect(Math.max(0, ...sizes), `largest host-built tensor (seed ${seed})`).toBeLessThan(c.B * c.H * c.P * c.N);
      const gr = tf.grads(loss(ssdScanRef))(xs);
      const sums = await gradContext(inp, c, keys, gr);
      for (let i = 0; i < keys.length; i++) {
        const e = ssdGradError(keys[i], await g[i].data(), await gr[i].data(), sums);
        expect(e, `gradient of ${keys[i]} (seed ${seed})`).toBeLessThan(ssdGradBound(keys[i]));
      }
      tf.dispose([...g, ...gr]);
    });
    tf.dispose([wy, ...xs]);
  });

  it('returns finalStates only when asked, and y has the shape of x', async (ctx) => {
    await useBackend(backend, ctx);
    const c = CASES[0];
    const inp = makeSsdInputs(c, 5);
    await withNoLeaks(async () => {
      const a = ssdScan(inp, c.opts);
      expect(a.finalStates).toBeUndefined();
      expect(a.y.shape).toEqual(inp.x.shape);
      a.y.dispose();
    });
    tf.dispose(Object.values(inp));
  });
});

describe('ssdScan gradient by finite differences (cpu, float64 loops)', () => {
  it('agrees with central differences of the loss in every input', async (ctx) => {
    await useBackend('cpu', ctx);
    const c: SsdCase = {
      name: 'fd',
      B: 1,
      L: 7,
      H: 2,
      P: 2,
      G: 1,
      N: 3,
      opts: { chunkSize: 4, dtSoftplus: true },
      D: 'head',
      z: true,
      bias: true,
      init: true,
      A: [-2, -0.5],
      dt: [-1, 1],
    };
    const seed = freshSeed();
    const inp = makeSsdInputs(c, seed);
    const keys = names(inp);
    const wy = randomTensor([1, c.L, c.H, c.P], seed + 1);
    const wf = randomTensor([1, c.H, c.P, c.N], seed + 2);
    const f = lossFn(ssdScan, keys, c.opts, wy, wf);
    const xs = keys.map((k) => inp[k] as tf.Tensor);
    const grads = tf.grads(f)(xs);
    // S = Σ|y·wy| + Σ|finalStates·wf|: the float32 loss is rounded to about 2⁻²⁴·S, so each difference
    // quotient carries ~2⁻²⁴·S/h of noise per element, whatever the gradient's own size.
    const o = ssdScan(inp, { ...c.opts, returnFinalStates: true });
    const absDot = async (a: tf.Tensor, b: tf.Tensor) => {
      const [av, bv] = [await a.data(), await b.data()];
      let sum = 0;
      for (let i = 0; i < av.length; i++) sum += Math.abs(av[i]! * bv[i]!);
      return sum;
    };
    const S = (await absDot(o.y, wy)) + (await absDot(o.finalStates!, wf));
    tf.dispose([o.y, o.finalStates!]);
    const [h, tol] = [2e-2, 5e-3];
    for (let i = 0; i < keys.length; i++) {
      const base = await xs[i].data();
      const an = await grads[i].data();
      const fd = new Float64Array(base.length);
      for (let j = 0; j < base.length; j++) {
        const at = async (delta: number) => {
          const v = Float32Array.from(base);
          v[j] += delta;
          const t = tf.tensor(v, xs[i].shape);
          const args = xs.map((x, q) => (q === i ? t : x));
          const out = f(...args);
          const val = (await out.data())[0];
          tf.dispose([t, out]);
          return val;
        };
        const central = async (d: number) => ((await at(d)) - (await at(-d))) / (2 * d);
        // Richardson's extrapolation cancels the h² term: along A (exp(dt·A) is strongly curved) one
        // central difference at 1e-2 was off by up to 1e-2 of dA in 4,000 seeds from truncation alone.
        fd[j] = (4 * (await central(h / 2)) - (await central(h))) / 3;
      }
      // Relative to the gradient, but never to less than 3× the rounding noise of the quotients: dA and
      // ddtBias (2 entries each) and dinitialStates can cancel to a few 1e-2, where that noise alone is
      // 0.5% (seed 3472128 failed at 7e-3; 1 of 4,000 seeds). Over 3,000 seeds this error stayed below
      // 0.23 of the bound (dinitialStates; dA 0.15). A wrong gradient is off by a fair part of its typical
      // size (0.3–2), far above that floor (at most 1.3e-3 absolute here).
      const noise = (Math.sqrt(base.length) * 2 ** -24 * S) / (h / 2);
      let [d2, n2] = [0, 0];
      for (let j = 0; j < fd.length; j++) {
        d2 += (an[j]! - fd[j]!) ** 2;
        n2 += fd[j]! ** 2;
      }
      const err = Math.sqrt(d2) / Math.max(Math.sqrt(n2), (3 * noise) / tol);
      expect(err, `d${keys[i]} vs finite differences (seed ${seed})`).toBeLessThan(tol);
    }
    tf.dispose([...grads, wy, wf, ...xs]);
  });
});

describe('ssdScan rejects bad input with an InputError naming the argument and both shapes', () => {
  it('checks ranks, batch/seqlen, groups, dtypes, D and options', async (ctx) => {
    await useBackend('cpu', ctx);
    const good = makeSsdInputs(CASES[1], 3); // B=1, L=21, H=4, P=8, G=2, N=4
    const bad =
      (patch: Partial<SsdScanInputs>, opts: SsdScanOptions = {}) =>
      () =>
        ssdScan({ ...good, ...patch }, opts);
    const expectErr = (fn: () => unknown, re: RegExp) => {
      expect(fn).toThrow(InputError);
      expect(fn).toThrow(re);
    };
    const t = (shape: number[], dtype: 'float32' | 'int32' = 'float32') => tf.zeros(shape, dtype);
    const made: tf.Tensor[] = [];
    const mk = (shape: number[], dtype: 'float32' | 'int32' = 'float32') => {
      const z = t(shape, dtype);
      made.push(z);
      return z;
    };
    expectErr(bad({ x: mk([21, 4, 8]) }), /x must have rank 4 .*got shape \[21, 4, 8\]/);
    expectErr(bad({ dt: mk([1, 20, 4]) }), /dt must have shape \[1, 21, 4\].*x \[1, 21, 4, 8\], got \[1, 20, 4\]/);
    expectErr(bad({ B: mk([2, 21, 2, 4]) }), /B must have shape \[1, 21, 2, 4\].*got \[2, 21, 2, 4\]/);
    expectErr(bad({ C: mk([1, 21, 2, 5]) }), /C must have shape \[1, 21, 2, 4\].*got \[1, 21, 2, 5\]/);
    expectErr(
      bad({ B: mk([1, 21, 3, 4]), C: mk([1, 21, 3, 4]) }),
      /nheads \(4.*\[1, 21, 4, 8\]\) must be divisible by ngroups \(3.*\[1, 21, 3, 4\]\)/,
    );
    expectErr(bad({ x: mk([1, 21, 4, 8], 'int32') }), /x must be float32, got int32/);
    expectErr(bad({ D: mk([4, 7]) }), /D must have shape \[4\].*or \[4, 8\].*got \[4, 7\]/);
    expectErr(bad({ A: mk([3]) }), /A must have shape \[4\].*got \[3\]/);
    expectErr(bad({ z: mk([1, 21, 4, 7]) }), /z must have shape \[1, 21, 4, 8\].*got \[1, 21, 4, 7\]/);
    expectErr(bad({ initialStates: mk([1, 4, 8, 5]) }), /initialStates must have shape \[1, 4, 8, 4\].*got \[1, 4, 8, 5\]/);
    expectErr(bad({ dtBias: mk([4], 'int32') }), /dtBias must be float32, got int32/);
    expectErr(bad({}, { chunkSize: 0 }), /chunkSize must be an integer/);
    expectErr(bad({}, { dtLimit: [0.5, 0.1] }), /dtLimit must have min <= max/);
    tf.dispose([...made, ...Object.values(good)]);
  });
});

describe('ssdScan on webgpu without initial states', () => {
  it('passes the chunk states in place: the same bits as the two-buffer pass from zero states, a lower device peak, no leaks', async (ctx) => {
    await useBackend('webgpu', ctx);
    const seed = freshSeed();
    // a longer sequence than CASES so that the chunk states dominate the kernel's buffers
    const c: SsdCase = { ...CASES[1]!, L: 200, init: false, opts: { chunkSize: 8, dtSoftplus: true, dtLimit: [0.02, 0.3] } };
    const inp = makeSsdInputs(c, seed);
    const zero = tf.zeros([c.B, c.H, c.P, c.N]);
    const run = async (init?: tf.Tensor) => {
      releaseFreeBuffers();
      const before = deviceMemory()!.allocatedBytes;
      resetDevicePeak();
      const r = ssdScan({ ...inp, ...(init ? { initialStates: init } : {}) }, { ...c.opts, returnFinalStates: true });
      const out = { y: await r.y.data(), fin: await r.finalStates!.data(), peak: deviceMemory()!.peakBytes - before };
      tf.dispose([r.y, r.finalStates!]);
      return out;
    };
    await withNoLeaks(async () => {
      await run(zero); // uploads the inputs, which the first run would count
      const inPlace = await run(); // no initial states: passInPlace
      const twoBuffers = await run(zero); // initial states (zero): passPass into a second buffer
      expect(Array.from(new Uint32Array(inPlace.y.buffer)), `y bits (seed ${seed})`).toEqual(
        Array.from(new Uint32Array(twoBuffers.y.buffer)),
      );
      expect(Array.from(new Uint32Array(inPlace.fin.buffer)), `finalStates bits (seed ${seed})`).toEqual(
        Array.from(new Uint32Array(twoBuffers.fin.buffer)),
      );
      // the passed states [B, Nc + 1, H, P, N] are the buffer the in-place pass saves
      const states = c.B * (Math.ceil(c.L / 8) + 1) * c.H * c.P * c.N * 4;
      console.log(`ssd device peak: in place ${inPlace.peak} B, two buffers ${twoBuffers.peak} B (states ${states} B)`);
      expect(twoBuffers.peak - inPlace.peak).toBeGreaterThanOrEqual(states);
    });
    tf.dispose([zero, ...Object.values(inp).filter((t): t is tf.Tensor => t instanceof tf.Tensor)]);
  });
});
