import { describeInfo, freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { causalConv1dSilu, causalConv1dSiluGradValues, causalConv1dSiluValues, segmentRows } from './conv1d.js';
import { ConvSiluGradXProgram, ConvSiluPartialProgram, ConvSiluProgram, convVec } from './conv1d-webgpu.js';
import { causalConv1dShifted, causalConv1dSiluRef, silu } from './layers.js';

type Opts = { workgroupSize?: number; rowsPerThread?: number; rowsPerSegment?: number };

/** Random x `[B, L, C]`, weight `[C, 1, K]`, bias `[C]` and dy, as arrays and tensors. */
function inputs([B, L, C, K]: number[], seed: number) {
  const v = {
    x: randomArray(B * L * C, seed, -3, 3),
    w: randomArray(C * K, seed + 1),
    b: randomArray(C, seed + 2),
    dy: randomArray(B * L * C, seed + 3),
  };
  const t = { x: tf.tensor(v.x, [B, L, C]), w: tf.tensor(v.w, [C, 1, K]), b: tf.tensor(v.b, [C]), dy: tf.tensor(v.dy, [B, L, C]) };
  return { v, t, dispose: () => tf.dispose(Object.values(t)) };
}

const grads = (f: (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor, t: ReturnType<typeof inputs>['t']) =>
  tf.grads((x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => f(x, w, b))([t.x, t.w, t.b], t.dy);

describe.each(testBackends())('causalConv1dSilu on %s', (name) => {
  it('matches the tfjs-ops composition and the plain loop, forward and all three gradients, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`causalConv1dSilu: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    const errs: string[] = [];
    // [B, L, C, K]: C % 4 == 0 (vec4) and odd C; L < K; L = 1; K = 4, 2 and 1; odd L
    for (const shape of [
      [2, 9, 8, 4],
      [3, 7, 5, 4],
      [2, 3, 12, 4],
      [1, 1, 7, 4],
      [2, 11, 6, 2],
      [1, 5, 4, 1],
      [2, 37, 20, 4],
    ]) {
      const io = inputs(shape, seed + shape[2]!);
      const tag = `[B, L, C, K] = ${shape}, seed ${seed}`;
      await withNoLeaks(async () => {
        const y = causalConv1dSilu(io.t.x, io.t.w, io.t.b);
        const ref = tf.tidy(() => silu(causalConv1dShifted(io.t.x, io.t.w, io.t.b)));
        const loop = causalConv1dSiluValues(io.v.x, io.v.w, io.v.b, shape.slice(0, 3), shape[3]!);
        const yv = await y.data();
        const ey = relErr(yv, await ref.data());
        expect(ey, tag).toBeLessThan(1e-5);
        expect(relErr(yv, loop), tag).toBeLessThan(1e-5);
        const g = grads(causalConv1dSilu, io.t);
        const gr = grads((x, w, b) => silu(causalConv1dShifted(x, w, b)), io.t);
        const gl = causalConv1dSiluGradValues(io.v.x, io.v.w, io.v.b, io.v.dy, shape.slice(0, 3), shape[3]!);
        const e: string[] = [ey.toExponential(1)];
        for (let i = 0; i < 3; i++) {
          const gv = await g[i]!.data();
          expect(g[i]!.shape, tag).toEqual(gr[i]!.shape);
          const ei = relErr(gv, await gr[i]!.data());
          expect(ei, `grad ${'xwb'[i]} ${tag}`).toBeLessThan(1e-4);
          expect(relErr(gv, gl[i]!), `grad ${'xwb'[i]} vs loop ${tag}`).toBeLessThan(1e-4);
          e.push(ei.toExponential(1));
        }
        errs.push(`${shape}: ${e.join(' ')}`);
        tf.dispose([y, ref, ...g, ...gr]);
      });
      io.dispose();
    }
    console.log(`causalConv1dSilu vs tfjs ops on ${name} (y, dx, dw, db): ${errs.join('; ')}`);
  });

  it('agrees with the old silu(causalConv1d) composition inside tf.tidy', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    const shape = [2, 6, 12, 4];
    const io = inputs(shape, seed);
    await withNoLeaks(async () => {
      const y = tf.tidy(() => causalConv1dSilu(io.t.x, io.t.w, io.t.b));
      const ref = tf.tidy(() => causalConv1dSiluRef(io.t.x, io.t.w, io.t.b));
      expect(relErr(await y.data(), await ref.data()), `seed ${seed}`).toBeLessThan(1e-5);
      tf.dispose([y, ref]);
    });
    io.dispose();
  });

  it('gives the same values under other thread layouts: rows per thread, rows per partial-sum segment', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    // 3 · 13 = 39 rows: blocks of 1, 3, 5 and 8 rows per thread (13 is a multiple of none but 1), and
    // partial-sum segments of 1, 5 (several per sequence, crossing its end) and 100 (one)
    for (const [shape, opts] of [
      [[3, 13, 8, 4], { rowsPerSegment: 5, rowsPerThread: 1 }],
      [[3, 13, 7, 3], { rowsPerSegment: 1, rowsPerThread: 3 }],
      [[3, 13, 8, 4], { rowsPerSegment: 100, rowsPerThread: 5 }],
      [[3, 13, 8, 2], { rowsPerThread: 8 }],
    ] as [number[], Opts][]) {
      const io = inputs(shape, seed + shape[2]! + shape[3]!);
      const tag = `${shape} ${JSON.stringify(opts)} seed ${seed}`;
      await withNoLeaks(async () => {
        const y = causalConv1dSilu(io.t.x, io.t.w, io.t.b, opts);
        const yl = causalConv1dSiluValues(io.v.x, io.v.w, io.v.b, shape.slice(0, 3), shape[3]!);
        expect(relErr(await y.data(), yl), `y ${tag}`).toBeLessThan(1e-5);
        const g = grads((x, w, b) => causalConv1dSilu(x, w, b, opts), io.t);
        const gl = causalConv1dSiluGradValues(io.v.x, io.v.w, io.v.b, io.v.dy, shape.slice(0, 3), shape[3]!);
        for (let i = 0; i < 3; i++) {
          expect(relErr(await g[i]!.data(), gl[i]!), `grad ${'xwb'[i]} ${tag}`).toBeLessThan(1e-4);
        }
        tf.dispose([y, ...g]);
      });
      io.dispose();
    }
  });

  it('handles empty inputs: no rows (zero dweight, dbias) and no channels', async (ctx) => {
    await useBackend(name, ctx);
    for (const [B, L, C] of [
      [0, 5, 8],
      [2, 0, 7],
      [2, 3, 0],
    ] as [number, number, number][]) {
      const io = inputs([B, L, C, 4], 1);
      await withNoLeaks(async () => {
        const y = causalConv1dSilu(io.t.x, io.t.w, io.t.b);
        expect(y.shape).toEqual([B, L, C]);
        const g = grads(causalConv1dSilu, io.t);
        expect(g.map((t) => t.shape)).toEqual([[B, L, C], [C, 1, 4], [C]]);
        for (const t of g.slice(1)) expect(Array.from(await t.data()).every((v) => v === 0)).toBe(true);
        tf.dispose([y, ...g]);
      });
      io.dispose();
    }
  });

  it('rejects a weight, bias or input of the wrong shape or type with a message that names it', async (ctx) => {
    await useBackend(name, ctx);
    const x = tf.zeros([2, 5, 6]);
    const w = tf.zeros([6, 1, 4]);
    const b = tf.zeros([6]);
    const bad = [
      tf.zeros([6, 4]),
      tf.zeros([5, 1, 4]),
      tf.zeros([6, 1, 17]),
      tf.zeros([5]),
      tf.zeros([2, 30]),
      tf.zeros([6, 1, 4], 'int32'),
    ];
    expect(() => causalConv1dSilu(x, bad[0]!, b)).toThrow(/weight must be \[C, 1, K\] with C = 6 .* got \[6, 4\]/);
    expect(() => causalConv1dSilu(x, bad[1]!, b)).toThrow(/weight must be \[C, 1, K\] with C = 6 .* got \[5, 1, 4\]/);
    expect(() => causalConv1dSilu(x, bad[2]!, b)).toThrow(/K .* must be in 1\.\.16, got 17/);
    expect(() => causalConv1dSilu(x, w, bad[3]!)).toThrow(/bias must be \[6\] .* got \[5\]/);
    expect(() => causalConv1dSilu(bad[4]!, w, b)).toThrow(/x/);
    expect(() => causalConv1dSilu(x, bad[5]!, b)).toThrow(/weight/);
    expect(() => causalConv1dSilu(x, w, b, { workgroupSize: 48 })).toThrow(/workgroupSize must be a power of two in 1\.\.256, got 48/);
    expect(() => causalConv1dSilu(x, w, b, { rowsPerThread: 9 })).toThrow(/rowsPerThread must be an integer in 1\.\.8, got 9/);
    tf.dispose([x, w, b, ...bad]);
  });
});

describe('causalConv1dSilu on webgpu at a large batch', () => {
  // More than 65,535 workgroups along x in the forward and dx passes (1 thread each), so tfjs folds
  // the grid into 2-D: the vec4 (C = 20, 16) and the scalar (C = 15) layouts, one row a thread and the
  // default 4, and (rowsPerSegment 1) the partial pass too.
  it.for([
    [[520, 33, 20, 4], { workgroupSize: 1, rowsPerThread: 1, rowsPerSegment: 1 }],
    [[260, 17, 15, 4], { workgroupSize: 1, rowsPerThread: 1, rowsPerSegment: 1 }],
    [[2048, 33, 16, 4], { workgroupSize: 1 }],
  ] as [number[], Opts][])('folds the dispatch of %j (%j) and stays finite and exact', async ([shape, opts], ctx) => {
    await useBackend('webgpu', ctx);
    const seed = freshSeed();
    const io = inputs(shape, seed);
    const tag = `${shape} ${JSON.stringify(opts)} seed ${seed}`;
    // the grids this case launches really are past one dimension's limit (so tfjs folds them)
    const [B, L, C, K] = shape as [number, number, number, number];
    const wg = opts.workgroupSize ?? 256;
    const tt = opts.rowsPerThread ?? 4;
    expect(new ConvSiluProgram([B, L, C], K, wg, tt).dispatch[0], tag).toBeGreaterThan(65535);
    expect(new ConvSiluGradXProgram([B, L, C], K, wg, tt).dispatch[0], tag).toBeGreaterThan(65535);
    const P = Math.ceil((B * L) / segmentRows(B * L, C / convVec(C), opts.rowsPerSegment ?? 0));
    const partialWorkgroups = new ConvSiluPartialProgram(P, [B, L, C], K, wg).dispatch[0];
    await withNoLeaks(async () => {
      const t0 = performance.now();
      const y = causalConv1dSilu(io.t.x, io.t.w, io.t.b, opts);
      const g = grads((x, w, b) => causalConv1dSilu(x, w, b, opts), io.t);
      const got = [await y.data(), ...(await Promise.all(g.map((t) => t.data())))];
      const ms = performance.now() - t0;
      const want = [
        causalConv1dSiluValues(io.v.x, io.v.w, io.v.b, shape.slice(0, 3), shape[3]!),
        ...causalConv1dSiluGradValues(io.v.x, io.v.w, io.v.b, io.v.dy, shape.slice(0, 3), shape[3]!),
      ];
      const errs = got.map((v, i) => {
        expect(v.every(Number.isFinite), `${'y dx dw db'.split(' ')[i]} finite, ${tag}`).toBe(true);
        return relErr(v, want[i]!);
      });
      for (let i = 0; i < 4; i++) expect(errs[i], `${'y dx dw db'.split(' ')[i]} ${tag}`).toBeLessThan(1e-4);
      // spot checks at the first and last rows (sequence starts and the end of the buffer)
      for (const e of [0, C - 1, C * L, got[0]!.length - 1]) {
        expect(Math.abs(got[0]![e]! - want[0]![e]!), `y[${e}] ${tag}`).toBeLessThan(1e-5 * (1 + Math.abs(want[0]![e]!)));
        expect(Math.abs(got[1]![e]! - want[1]![e]!), `dx[${e}] ${tag}`).toBeLessThan(1e-5 * (1 + Math.abs(want[1]![e]!)));
      }
      console.log(
        `causalConv1dSilu large batch ${tag} (${partialWorkgroups} partial-pass workgroups): ${ms.toFixed(0)} ms fwd+bwd, errs ${errs.map((e) => e.toExponential(1)).join(' ')}`,
      );
      tf.dispose([y, ...g]);
    });
    io.dispose();
  });
});
