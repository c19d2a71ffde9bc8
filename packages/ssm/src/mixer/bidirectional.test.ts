import { InputError, Rng } from '@t2md/core';
import { describeInfo, freshSeed, peakDataBytes, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { scanPermutation } from '../scan-order/scan-order.js';
import { BidirectionalMamba, type BidirectionalMambaConfig, FUSED_PER_CALL_TOKENS } from './bidirectional.js';
import { bidirectionalReference, mamba2Reference } from './reference.js';

const BASE = { dModel: 8, dState: 4, headdim: 4, chunkSize: 4 };
const MAMBA_NAMES = ['in_proj.weight', 'conv1d.weight', 'conv1d.bias', 'dt_bias', 'A_log', 'D', 'norm.weight', 'out_proj.weight'];

function idx(a: Int32Array | number[]): tf.Tensor {
  return tf.tensor1d(Array.from(a), 'int32');
}

/** Tokens of a row-major [H, W] grid re-laid as the row-major [W, H] grid of the transpose. */
function transposeTokens(x: tf.Tensor, H: number, W: number): tf.Tensor {
  const [B, , D] = x.shape;
  return tf.reshape(tf.transpose(tf.reshape(x, [B, H, W, D]), [0, 2, 1, 3]), [B, H * W, D]);
}

describe('BidirectionalMamba', () => {
  it('has the Mamba-2 names plus merge.weight/bias for concat, none for sum; outputs [B, L, D]', async (ctx) => {
    await useBackend('cpu', ctx);
    const x = tf.tensor(randomArray(2 * 12 * 8, 5), [2, 12, 8]);
    for (const merge of ['concat', 'sum'] as const) {
      const m = new BidirectionalMamba({ ...BASE, order: 'HM', merge }, new Rng(3));
      const w = m.weights();
      const want = merge === 'concat' ? [...MAMBA_NAMES, 'merge.weight', 'merge.bias'] : MAMBA_NAMES;
      expect(Object.keys(w).sort()).toEqual([...want].sort());
      if (merge === 'concat') {
        expect(w['merge.weight'].shape).toEqual([8, 16]);
        expect(w['merge.bias'].shape).toEqual([8]);
      }
      expect(m.config).toMatchObject({ order: 'HM', merge, snake: false, dModel: 8, dState: 4 });
      m.apply(x, [3, 4]).dispose(); // the first call makes the kept output weight (concat), later ones reuse it
      await withNoLeaks(async () => {
        const y = m.apply(x, [3, 4]);
        expect(y.shape).toEqual([2, 12, 8]);
        expect((await y.data()).every(Number.isFinite)).toBe(true);
        y.dispose();
      });
      m.dispose();
    }
    expect(new BidirectionalMamba({ ...BASE, order: 'WM' }, new Rng(0)).config.merge).toBe('concat');
    x.dispose();
  });

  it('equals the mixer run on the ordered and the reversed sequence, put back and merged (cpu)', async (ctx) => {
    const info = await useBackend('cpu', ctx);
    console.log(`BidirectionalMamba: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    const [B, H, W] = [2, 3, 5];
    const L = H * W;
    for (const cfg of [
      { order: 'HM', merge: 'concat' },
      { order: 'WM', merge: 'sum' },
      { order: 'HM', merge: 'sum', snake: true },
    ] as Omit<BidirectionalMambaConfig, 'dModel'>[]) {
      const m = new BidirectionalMamba({ ...BASE, ...cfg }, new Rng(seed));
      const x = tf.tensor(randomArray(B * L * 8, seed + 1, -2, 2), [B, L, 8]);
      m.apply(x, [H, W]).dispose(); // makes the kept output weight (concat)
      await withNoLeaks(async () => {
        const y = m.apply(x, [H, W]);
        const want = tf.tidy(() => {
          const w = m.weights();
          const { perm, inv } = scanPermutation(cfg.order, H, W, { snake: cfg.snake });
          const xs = tf.gather(x, idx(perm), 1);
          const yf = tf.gather(mamba2Reference(w, xs, m.mixer.config), idx(inv), 1);
          const yr = tf.reverse(mamba2Reference(w, tf.reverse(xs, 1), m.mixer.config), 1);
          const yb = tf.gather(yr, idx(inv), 1);
          if (cfg.merge === 'sum') return tf.add(yf, yb);
          const cat = tf.concat([yf, yb], 2);
          return tf.reshape(tf.add(tf.matMul(tf.reshape(cat, [B * L, 16]), tf.transpose(w['merge.weight'])), w['merge.bias']), [B, L, 8]);
        });
        const err = relErr(await y.data(), await want.data());
        console.log(`bidirectional ${JSON.stringify(cfg)} vs composed reference: ${err.toExponential(2)}`);
        expect(err, `seed ${seed} ${JSON.stringify(cfg)}`).toBeLessThan(1e-4);
        tf.dispose([y, want]);
      });
      x.dispose();
      m.dispose();
    }
  });

  it('is consistent under reversal of the sequence and under transposing the grid (HM on [H, W] = WM on [W, H])', async (ctx) => {
    await useBackend('cpu', ctx);
    const seed = freshSeed();
    const [B, H, W] = [1, 4, 3];
    const L = H * W;
    const x = tf.tensor(randomArray(B * L * 8, seed, -2, 2), [B, L, 8]);
    await withNoLeaks(async () => {
      for (const order of ['WM', 'HM'] as const) {
        // Reversing a row-major sequence rotates the grid by 180 degrees; both scans then run in the
        // other direction, so with 'sum' the output is the reversed output.
        const s = new BidirectionalMamba({ ...BASE, order, merge: 'sum' }, new Rng(seed));
        const a = tf.tidy(() => tf.reverse(s.apply(x, [H, W]), 1));
        const b = tf.tidy(() => s.apply(tf.reverse(x, 1), [H, W]));
        expect(relErr(await a.data(), await b.data()), `${order} sum, seed ${seed}`).toBeLessThan(1e-5);
        // With 'concat' the halves of merge.weight swap roles.
        const c = new BidirectionalMamba({ ...BASE, order }, new Rng(seed));
        const c2 = new BidirectionalMamba({ ...BASE, order }, new Rng(seed));
        const mw = c.weights()['merge.weight'];
        tf.tidy(() => c2.weights()['merge.weight'].assign(tf.concat(tf.split(mw, 2, 1).reverse(), 1)));
        const p = tf.tidy(() => tf.reverse(c.apply(x, [H, W]), 1));
        const q = tf.tidy(() => c2.apply(tf.reverse(x, 1), [H, W]));
        expect(relErr(await p.data(), await q.data()), `${order} concat, seed ${seed}`).toBeLessThan(1e-5);
        tf.dispose([a, b, p, q]);
        for (const m of [s, c, c2]) m.dispose();
      }
      const hm = new BidirectionalMamba({ ...BASE, order: 'HM' }, new Rng(seed));
      const wm = new BidirectionalMamba({ ...BASE, order: 'WM' }, new Rng(seed));
      const u = hm.apply(x, [H, W]);
      const v = tf.tidy(() => transposeTokens(wm.apply(transposeTokens(x, H, W), [W, H]), W, H));
      expect(relErr(await u.data(), await v.data()), `seed ${seed}`).toBeLessThan(1e-5);
      tf.dispose([u, v]);
      hm.dispose();
      wm.dispose();
    });
    x.dispose();
  });

  it('passes gradients to every weight (shared mixer and merge) without leaking, on cpu and wasm', async (ctx) => {
    for (const backend of ['cpu', 'wasm'] as const) {
      await useBackend(backend, ctx);
      const seed = freshSeed();
      const m = new BidirectionalMamba({ ...BASE, ngroups: 2, order: 'HM' }, new Rng(seed));
      const x = tf.tensor(randomArray(2 * 6 * 8, seed, -2, 2), [2, 6, 8]);
      const dy = tf.tensor(randomArray(2 * 6 * 8, seed + 1), [2, 6, 8]);
      const w = m.weights();
      await withNoLeaks(async () => {
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(m.apply(x, [2, 3]), dy)) as tf.Scalar, Object.values(w));
        for (const [name, v] of Object.entries(w)) {
          const g = await grads[v.name].data();
          expect(g.every(Number.isFinite), `${backend} ${name} finite, seed ${seed}`).toBe(true);
          expect(
            g.some((e) => e !== 0),
            `${backend} ${name} nonzero, seed ${seed}`,
          ).toBe(true);
        }
        tf.dispose([value, ...Object.values(grads)]);
      });
      tf.dispose([x, dy]);
      m.dispose();
    }
  });

  it('runs on webgpu (tiny) and agrees with cpu', async (ctx) => {
    const seed = freshSeed();
    const xv = randomArray(1 * 6 * 8, seed, -2, 2);
    await useBackend('cpu', ctx);
    const mc = new BidirectionalMamba({ ...BASE, order: 'HM' }, new Rng(seed));
    const xc = tf.tensor(xv, [1, 6, 8]);
    const yc = await mc.apply(xc, [2, 3]).data();
    mc.dispose();
    tf.dispose(xc);
    const info = await useBackend('webgpu', ctx);
    console.log(`BidirectionalMamba: running on ${describeInfo(info)}`);
    const mg = new BidirectionalMamba({ ...BASE, order: 'HM' }, new Rng(seed));
    const xg = tf.tensor(xv, [1, 6, 8]);
    mg.apply(xg, [2, 3]).dispose(); // makes the kept output weight (concat)
    await withNoLeaks(async () => {
      const y = mg.apply(xg, [2, 3]);
      const err = relErr(await y.data(), yc);
      console.log(`bidirectional webgpu vs cpu: ${err.toExponential(2)}`);
      expect(err, `seed ${seed}`).toBeLessThan(1e-4);
      y.dispose();
    });
    xg.dispose();
    mg.dispose();
  });

  it('on webgpu outside a gradient tape runs the directions in turn: the same bits as the batched directions under a tape, no leaks', async (ctx) => {
    const info = await useBackend('webgpu', ctx);
    console.log(`BidirectionalMamba in turn vs batched: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    const [B, H, W, dModel] = [2, 4, 5, 16];
    for (const merge of ['concat', 'sum'] as const) {
      const m = new BidirectionalMamba({ ...BASE, dModel, order: 'HM', merge, snake: true }, new Rng(seed));
      const x = tf.tensor(randomArray(B * H * W * dModel, seed + 1, -2, 2), [B, H * W, dModel]);
      m.apply(x, [H, W]).dispose(); // makes the kept output weight (concat)
      await withNoLeaks(async () => {
        const inTurn = m.apply(x, [H, W]);
        let batched: tf.Tensor | undefined;
        // under a tape the mixer takes its training path: both directions as one batch of 2B sequences
        const dx = tf.grad((xi: tf.Tensor) => {
          batched = tf.keep(m.apply(xi, [H, W]));
          return tf.sum(batched);
        })(x);
        const bits = async (t: tf.Tensor) => Array.from(new Uint32Array((await t.data()).buffer));
        expect(await bits(inTurn), `${merge} (seed ${seed})`).toEqual(await bits(batched!));
        tf.dispose([inTurn, batched!, dx]);
      });
      tf.dispose(x);
      m.dispose();
    }
  });

  it('on webgpu outside a gradient tape makes no [B, L, convDim] tensor: x, B and C stay apart from in_proj to the scan', async (ctx) => {
    const info = await useBackend('webgpu', ctx);
    console.log(`BidirectionalMamba xBC apart: running on ${describeInfo(info)}`);
    const [B, H, W, dModel] = [1, 3, 4, 16];
    const m = new BidirectionalMamba({ ...BASE, dModel, order: 'WM' }, new Rng(5));
    const convDim = 2 * dModel + 2 * BASE.dState; // dInner + 2·G·N
    const x = tf.tensor(randomArray(B * H * W * dModel, 6), [B, H * W, dModel]);
    m.apply(x, [H, W]).dispose(); // makes the kept output weight
    await withNoLeaks(async () => {
      const prof = await tf.profile(() => m.apply(x, [H, W]));
      const wide = prof.kernels.filter((k) =>
        k.outputShapes.some((s) => s != null && s.length >= 2 && s[1] === H * W && s.at(-1) === convDim),
      );
      expect(wide.map((k) => `${k.name} ${JSON.stringify(k.outputShapes)}`)).toEqual([]);
      // in_proj as four linears and x, B, C each convolved (the tape path makes xBC whole: the test above)
      expect(prof.kernels.filter((k) => k.outputShapes.some((s) => s?.at(-1) === 2 * dModel && s[1] === H * W)).length).toBeGreaterThan(0);
      (prof.result as tf.Tensor).dispose();
    });
    tf.dispose(x);
    m.dispose();
  });

  it('on webgpu outside a gradient tape projects the gate z only after both scans, without leaking', async (ctx) => {
    const info = await useBackend('webgpu', ctx);
    console.log(`BidirectionalMamba late gate: running on ${describeInfo(info)}`);
    const [B, H, W, dModel] = [1, 3, 4, 16];
    const dInner = 2 * dModel;
    const m = new BidirectionalMamba({ ...BASE, dModel, order: 'HM' }, new Rng(8));
    const x = tf.tensor(randomArray(B * H * W * dModel, 9), [B, H * W, dModel]);
    m.apply(x, [H, W]).dispose(); // makes the kept output weight
    await withNoLeaks(async () => {
      const prof = await tf.profile(() => m.apply(x, [H, W]));
      const names = prof.kernels.map((k) => k.name);
      // in_proj's linears of dInner outputs (x, then z) by the matmul kernels, and the two scans
      const proj = prof.kernels
        .map((k, i) => ({ k, i }))
        .filter(({ k }) => /MatMul|Gemm/i.test(k.name) && k.outputShapes.some((s) => s?.at(-1) === dInner && s.at(-2) === H * W));
      const scans = names.flatMap((n, i) => (n === 'T2mdSsdScan' ? [i] : []));
      expect(scans.length).toBe(2);
      expect(proj.length).toBe(2);
      expect(proj[0]!.i).toBeLessThan(scans[0]!); // x, before the first scan
      expect(proj[1]!.i).toBeGreaterThan(scans[1]!); // z, after the second
      (prof.result as tf.Tensor).dispose();
    });
    tf.dispose(x);
    m.dispose();
  });

  it('outside a gradient tape frees each activation once used: peak under 2× the in_proj of both directions', async (ctx) => {
    await useBackend('cpu', ctx);
    const [B, H, W, dModel] = [2, 8, 8, 16];
    const m = new BidirectionalMamba({ ...BASE, dModel, order: 'HM', merge: 'concat' }, new Rng(3));
    const x = tf.tensor(randomArray(B * H * W * dModel, 4), [B, H * W, dModel]);
    m.apply(x, [H, W]).dispose(); // keeps the fused output weight: not an activation
    const ours = await peakDataBytes(() => m.apply(x, [H, W]).dispose());
    // the in_proj output over both directions: 2B·L·(2·dInner + 2·dState + heads) floats. The busiest
    // stage holds z, dt, the conv output and its x, B, C copies: ≈1.5× that. One tidy around the whole
    // mixer (as before) held every activation to the end: 3.2× here.
    const projBoth = 2 * B * H * W * (4 * dModel + 2 * BASE.dState + (2 * dModel) / BASE.headdim) * 4;
    console.log(`mixer peak: ${ours} bytes, ${(ours / projBoth).toFixed(2)}× the in_proj of both directions`);
    expect(ours).toBeLessThan(2 * projBoth);
    tf.dispose(x);
    m.dispose();
  });

  it.for(['cpu', 'webgpu'] as const)(
    'on %s a call of FUSED_PER_CALL_TOKENS·D tokens or more makes the fused output weight for itself and keeps none: the bits of the kept one',
    async (backend, ctx) => {
      const info = await useBackend(backend, ctx);
      console.log(`BidirectionalMamba fused weight per call: running on ${describeInfo(info)}`);
      const seed = freshSeed();
      const [H, W, dModel] = [4, 4, 8];
      const L = H * W;
      const B = (FUSED_PER_CALL_TOKENS * dModel) / L; // B·L at the threshold: the fused weight is made per call
      const m = new BidirectionalMamba({ ...BASE, dModel, order: 'WM' }, new Rng(seed));
      const x = tf.tensor(randomArray(B * L * dModel, seed + 1, -2, 2), [B, L, dModel]);
      const rows = tf.split(x, B, 0); // [1, L, D] each: below the threshold, the kept weight
      const bits = async (t: tf.Tensor) => Array.from(new Uint32Array((await t.data()).buffer));
      const before = tf.memory().numTensors;
      const one = m.apply(rows[0]!, [H, W]);
      expect(tf.memory().numTensors, "a short call keeps W'").toBe(before + 2);
      // the whole batch: W' made for this call and freed, the kept one freed too
      const all = m.apply(x, [H, W]);
      expect(tf.memory().numTensors, "a long call frees the kept W'").toBe(before + 2);
      // and with none kept, a long call leaves nothing but its output
      const again = await withNoLeaks(() => m.apply(x, [H, W]));
      expect(await bits(again)).toEqual(await bits(all));
      again.dispose();
      const parts = [one, ...rows.slice(1).map((r) => m.apply(r, [H, W]))];
      const joined = tf.concat(parts, 0);
      expect(await bits(all), `seed ${seed}`).toEqual(await bits(joined));
      tf.dispose([all, joined, ...parts, ...rows, x]);
      m.dispose();
    },
  );

  it('rejects bad input with an InputError naming the argument', async (ctx) => {
    await useBackend('cpu', ctx);
    const m = new BidirectionalMamba({ ...BASE, order: 'WM' }, new Rng(0));
    const cases: [() => unknown, RegExp][] = [
      [() => m.apply(tf.zeros([6, 8]), [2, 3]), /x must have rank 3 \[B, L, D\], got shape \[6, 8\]/],
      [() => m.apply(tf.zeros([1, 6, 8]), [2, 4]), /grid \[2, 4\] has 8 tokens but x has L = 6/],
      [() => m.apply(tf.zeros([1, 6, 4]), [2, 3]), /x must have shape \[B, L, 8\] \(dModel = 8\), got \[1, 6, 4\]/],
      [() => m.apply(tf.zeros([1, 6, 8]), [6] as unknown as [number, number]), /grid must be \[H, W\]/],
      [() => m.apply(tf.zeros([1, 6, 8]), [2.5, 3]), /grid\[0\] \(H\) must be an integer/],
      [() => new BidirectionalMamba({ ...BASE, order: 'XY' as 'HM' }, new Rng(0)), /config.order must be one of 'WM', 'HM'/],
      [() => new BidirectionalMamba({ ...BASE, order: 'HM', merge: 'mean' as 'sum' }, new Rng(0)), /config.merge must be one of/],
    ];
    const before = tf.memory().numTensors;
    for (const [f, re] of cases) {
      // tidy frees the zeros made by each case (it disposes its scope when f throws, too)
      expect(() => tf.tidy(() => void f())).toThrow(InputError);
      expect(() => tf.tidy(() => void f())).toThrow(re);
    }
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});

describe.each(testBackends())('BidirectionalMamba (shared in_proj, fused output) on %s', (name) => {
  it('equals the whole mixer on both directions then the merge, forward and every gradient, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`BidirectionalMamba vs its reference: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    // HM and WM, concat and sum, an odd grid, a snake order, vec4 and scalar widths
    for (const [cfg, [B, H, W], dModel] of [
      [{ order: 'HM', merge: 'concat' }, [2, 3, 5], 8],
      [{ order: 'WM', merge: 'concat' }, [1, 5, 3], 12],
      [{ order: 'WM', merge: 'sum' }, [2, 3, 5], 8],
      [{ order: 'HM', merge: 'sum', snake: true }, [1, 4, 3], 6],
      // two groups: the gather's x, B, C parts and the shared gate's norm groups within each direction
      [{ order: 'WM', merge: 'concat', ngroups: 2 }, [2, 3, 4], 8],
    ] as [Omit<BidirectionalMambaConfig, 'dModel'>, [number, number, number], number][]) {
      const m = new BidirectionalMamba({ ...BASE, dModel, ...cfg }, new Rng(seed));
      // off the init, so every weight matters (merge halves differ, D and norm are not constants)
      for (const v of Object.values(m.weights())) {
        tf.tidy(() => v.assign(tf.add(v, tf.tensor(randomArray(v.size, seed + v.size, -0.3, 0.3), v.shape))));
      }
      const L = H * W;
      const x = tf.tensor(randomArray(B * L * dModel, seed + 1, -2, 2), [B, L, dModel]);
      const dy = tf.tensor(randomArray(B * L * dModel, seed + 2), [B, L, dModel]);
      const label = `${name} ${JSON.stringify(cfg)} grid ${H}x${W} seed ${seed}`;
      m.apply(x, [H, W]).dispose(); // the fused output weight is kept between calls outside a tape
      await withNoLeaks(async () => {
        const [y, want] = [m.apply(x, [H, W]), bidirectionalReference(m, x, [H, W])];
        expect(relErr(await y.data(), await want.data()), label).toBeLessThan(1e-5);
        const names = Object.keys(m.weights());
        const vars = names.map((n) => m.weights()[n]!);
        const grads = (f: () => tf.Tensor) => {
          const { grads: g, value } = tf.variableGrads(() => tf.sum(tf.mul(f(), dy)) as tf.Scalar, vars);
          value.dispose();
          return names.map((n) => g[m.weights()[n]!.name]!);
        };
        const prof = await tf.profile(() => tf.dispose(grads(() => m.apply(x, [H, W]))));
        // splits, not slices: no slice's zero-padded gradient (PadV2) in the backward
        expect(prof.kernelNames, label).not.toContain('PadV2');
        const g = grads(() => m.apply(x, [H, W]));
        const gr = grads(() => bidirectionalReference(m, x, [H, W]));
        for (const [i, n] of names.entries()) {
          expect(relErr(await g[i]!.data(), await gr[i]!.data()), `${label} d${n}`).toBeLessThan(1e-5);
        }
        const [gx] = tf.grads((t: tf.Tensor) => m.apply(t, [H, W]))([x], dy);
        const [gxr] = tf.grads((t: tf.Tensor) => bidirectionalReference(m, t, [H, W]))([x], dy);
        expect(relErr(await gx!.data(), await gxr!.data()), `${label} dx`).toBeLessThan(1e-5);
        tf.dispose([y, want, ...g, ...gr, gx!, gxr!]);
      });
      if (cfg.merge === 'concat') {
        // the kept weight follows an assignment to any of the three weights it is made from
        const nw = m.weights()['norm.weight']!;
        tf.tidy(() => nw.assign(tf.mul(nw, 1.5)));
        const [y, want] = [m.apply(x, [H, W]), bidirectionalReference(m, x, [H, W])];
        expect(relErr(await y.data(), await want.data()), `${label} after assign`).toBeLessThan(1e-5);
        tf.dispose([y, want]);
      }
      tf.dispose([x, dy]);
      m.dispose();
    }
  }, 300_000); // 69 s on the 2-core CI machine (SwiftShader, forward and every gradient): the default 120 s is a thin margin
});
