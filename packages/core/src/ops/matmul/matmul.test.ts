import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../errors.js';
import { describeInfo, freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '../../testing/index.js';
import { linear } from '../linear.js';
import { autoSplitK, autoTile, GEMM_DEFAULTS, gemm, gemmRef, type MatMulVariant, resolveMatmulVariant } from './matmul.js';

const TRANSPOSES: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

/** One forward check: C [M, N] from K, the transposes, with or without bias. */
interface Case {
  M: number;
  K: number;
  N: number;
  tA: boolean;
  tB: boolean;
  bias: boolean;
}

/**
 * Every transpose on a shape with no axis a multiple of 4 (scalar loads and stores) and on one with
 * all of them multiples of 4 (vec4 paths), bias on and off across the two; plus more tiles than one
 * along M, a single row. Each distinct case is a new pipeline, which SwiftShader compiles in seconds
 * (~18 s for the 128×128 one), so the 128-tile runs only the cases marked for it.
 */
const CASES: (Case & { t128?: boolean })[] = [
  ...TRANSPOSES.map(([tA, tB], i) => ({ M: 37, K: 53, N: 29, tA, tB, bias: i % 2 === 1 })),
  ...TRANSPOSES.map(([tA, tB], i) => ({ M: 68, K: 36, N: 132, tA, tB, bias: i % 2 === 0, t128: tA && !tB })),
  { M: 130, K: 70, N: 66, tA: false, tB: true, bias: true, t128: true },
  { M: 1, K: 8, N: 5, tA: false, tB: true, bias: false },
];

function rand(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(randomArray(shape[0]! * shape[1]!, seed), shape);
}

/** The variants to compare on a backend: every tiling on webgpu; elsewhere gemm is tfjs's matMul. */
function variantsFor(name: string): MatMulVariant[] {
  return name === 'webgpu' ? ['t64', 't128'] : ['auto'];
}

describe.each(testBackends())('gemm on %s', (name) => {
  it('matches tfjs matMul for every transpose, with and without bias, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`gemm: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    for (const variant of variantsFor(name)) {
      for (const { M, K, N, tA, tB, bias: withBias, t128 } of CASES) {
        if (variant === 't128' && !t128) continue;
        const a = rand(tA ? [K, M] : [M, K], seed + M);
        const b = rand(tB ? [N, K] : [K, N], seed + N);
        const bias = tf.tensor(randomArray(N, seed + 7), [N]);
        await withNoLeaks(async () => {
          const opts = { transposeA: tA, transposeB: tB, bias: withBias ? bias : undefined, variant };
          const [c, cRef] = [gemm(a, b, opts), gemmRef(a, b, opts)];
          expect(c.shape).toEqual([M, N]);
          const label = `${variant} ${M}x${K}x${N} tA=${tA} tB=${tB} bias=${withBias} seed ${seed}`;
          expect(relErr(await c.data(), await cRef.data()), label).toBeLessThan(1e-5);
          tf.dispose([c, cRef]);
        });
        tf.dispose([a, b, bias]);
      }
    }
  }, 600_000);

  it('differentiates gemm (every transpose) and linear like tfjs, without leaking', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    const [M, K, N] = [37, 21, 13];
    for (const variant of variantsFor(name)) {
      // every transpose's gradient on the 64-tile (and cpu); on the 128-tile only linear's layout (NT
      // forward, NN and TN gradients: the variant option reaches the gradient's GEMMs).
      for (const [tA, tB] of variant === 't128' ? [[false, true] as const] : TRANSPOSES) {
        const a = rand(tA ? [K, M] : [M, K], seed + 1);
        const b = rand(tB ? [N, K] : [K, N], seed + 2);
        const bias = tf.tensor(randomArray(N, seed + 3), [N]);
        const dy = rand([M, N], seed + 4);
        await withNoLeaks(async () => {
          const f = (ref: boolean) => (x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) =>
            (ref ? gemmRef : gemm)(x, w, { transposeA: tA, transposeB: tB, bias: c, variant });
          const g = tf.grads(f(false))([a, b, bias], dy);
          const gRef = tf.grads(f(true))([a, b, bias], dy);
          for (let i = 0; i < 3; i++) {
            expect(g[i]!.shape).toEqual(gRef[i]!.shape);
            const label = `${variant} d${'abc'[i]} tA=${tA} tB=${tB} seed ${seed}`;
            expect(relErr(await g[i]!.data(), await gRef[i]!.data()), label).toBeLessThan(1e-4);
          }
          tf.dispose([...g, ...gRef]);
        });
        tf.dispose([a, b, bias, dy]);
      }
      if (variant === 't128') {
        // the gradient ran the variant asked for: dA = dC·B is an NN GEMM, compiled on the 128-tile only here
        const compiled = Object.keys((tf.backend() as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache);
        expect(
          compiled.some((k) => k.startsWith('t2md_matmul_t128_t00')),
          `t128 NN program, seed ${seed}`,
        ).toBe(true);
      }
    }
    // linear (variant auto): x [M, K], w [N, K] (PyTorch layout), b [N]; reference in plain tfjs ops.
    const x = rand([M, K], seed + 5);
    const w = rand([N, K], seed + 6);
    const b = tf.tensor(randomArray(N, seed + 7), [N]);
    const dy = rand([M, N], seed + 8);
    await withNoLeaks(async () => {
      const y = linear(x, w, b);
      const yRef = tf.tidy(() => tf.add(tf.matMul(x, tf.transpose(w)), b));
      expect(relErr(await y.data(), await yRef.data()), `linear seed ${seed}`).toBeLessThan(1e-5);
      const g = tf.grads((p: tf.Tensor, q: tf.Tensor, r: tf.Tensor) => linear(p, q, r))([x, w, b], dy);
      const gRef = tf.grads((p: tf.Tensor, q: tf.Tensor, r: tf.Tensor) => tf.add(tf.matMul(p, tf.transpose(q)), r))([x, w, b], dy);
      for (let i = 0; i < 3; i++) {
        expect(relErr(await g[i]!.data(), await gRef[i]!.data()), `linear d${'xwb'[i]} seed ${seed}`).toBeLessThan(1e-4);
      }
      tf.dispose([y, yRef, ...g, ...gRef]);
    });
    tf.dispose([x, w, b, dy]);
  }, 600_000);

  it('splits a long K over workgroup layers with the same result (and gradient) as one pass', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    // Small outputs with a long K: the weight-gradient shape. Scalar (odd) and vec4 (multiple of 4) paths,
    // splits that do not divide the K-tiles, and more layers than tiles (empty layers write zeros).
    const cases = [
      { M: 19, K: 1100, N: 23, tA: true, tB: false, splits: [2, 5] },
      { M: 16, K: 2048, N: 36, tA: false, tB: true, splits: [3, 200] },
      { M: 8, K: 130, N: 12, tA: true, tB: true, splits: [4] },
    ];
    for (const { M, K, N, tA, tB, splits } of cases) {
      const av = randomArray(M * K, seed + M);
      const bv = randomArray(N * K, seed + N);
      const biasv = randomArray(N, seed + 5);
      const a = tf.tensor(av, tA ? [K, M] : [M, K]);
      const b = tf.tensor(bv, tB ? [N, K] : [K, N]);
      const bias = tf.tensor(biasv, [N]);
      // A float64 loop as the reference: tfjs-webgpu's own matMul is wrong on SwiftShader for some of
      // these shapes (seen: [16, 2048]·[36, 2048]ᵀ, relative error 1.4).
      const ref = new Float64Array(M * N);
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let acc = biasv[n]!;
          for (let k = 0; k < K; k++) acc += av[tA ? k * M + m : m * K + k]! * bv[tB ? n * K + k : k * N + n]!;
          ref[m * N + n] = acc;
        }
      }
      for (const splitK of splits) {
        await withNoLeaks(async () => {
          const c = gemm(a, b, { transposeA: tA, transposeB: tB, bias, splitK });
          expect(c.shape).toEqual([M, N]);
          expect(relErr(await c.data(), ref), `${M}x${K}x${N} tA=${tA} tB=${tB} splitK=${splitK} seed ${seed}`).toBeLessThan(1e-5);
          c.dispose();
        });
      }
      tf.dispose([a, b, bias]);
    }
    // The weight gradient of a linear layer over many rows takes the split (autoSplitK) and matches tfjs.
    const x = rand([1536, 20], seed + 1);
    const w = rand([12, 20], seed + 2);
    const dy = rand([1536, 12], seed + 3);
    expect(autoSplitK(12, 20, 1536, 't64')).toBe(3);
    await withNoLeaks(async () => {
      const [dw] = tf.grads((q: tf.Tensor) => linear(x, q))([w], dy);
      const dwRef = tf.matMul(dy, x, true, false);
      expect(relErr(await dw!.data(), await dwRef.data()), `linear dW seed ${seed}`).toBeLessThan(1e-5);
      tf.dispose([dw!, dwRef]);
    });
    tf.dispose([x, w, dy]);
  }, 600_000);

  it('rejects bad shapes with an InputError naming both; resolves the variant that runs here', async (ctx) => {
    await useBackend(name, ctx);
    const a = tf.zeros([3, 4]);
    const b = tf.zeros([5, 6]);
    const v = tf.zeros([4]);
    expect(() => gemm(a, b)).toThrow(InputError);
    expect(() => gemm(a, b)).toThrow(/a \[3, 4\] and b \[5, 6\]/);
    expect(() => gemm(a, v)).toThrow(/2-D.*a \[3, 4\] and b \[4\]/);
    const b3 = tf.zeros([3, 6]);
    expect(() => gemm(a, b3, { transposeA: true, bias: v })).toThrow(/bias must have shape \[6\].*got \[4\]/);
    tf.dispose([a, b, b3, v]);
    // what runs: on webgpu auto's pick or the tiling asked for; elsewhere always tfjs's matMul
    expect(resolveMatmulVariant(8192, 1152)).toBe(name === 'webgpu' ? 't128' : 'tfjs');
    expect(resolveMatmulVariant(2048, 1152, 't128')).toBe(name === 'webgpu' ? 't128' : 'tfjs');
    expect(resolveMatmulVariant(8192, 1152, 'tfjs')).toBe('tfjs');
  });
});

describe('gemm options', () => {
  it('rejects an unknown variant or unroll with an InputError naming the option, on every backend path', async (ctx) => {
    await useBackend('cpu', ctx);
    const a = tf.zeros([3, 4]);
    const b = tf.zeros([4, 5]);
    const before = tf.memory().numTensors;
    expect(() => gemm(a, b, { variant: 'fast' as MatMulVariant })).toThrow(InputError);
    expect(() => gemm(a, b, { variant: 'fast' as MatMulVariant })).toThrow(
      /gemm option variant must be one of tfjs, t128, t64, auto, got "fast"; leave it out for the default \(auto\)/,
    );
    expect(() => gemm(a, b, { unroll: 3 as 4 })).toThrow(InputError);
    expect(() => gemm(a, b, { unroll: 3 as 4 })).toThrow(/gemm option unroll must be one of 1, 2, 4, 8, 16, got 3/);
    expect(() => resolveMatmulVariant(64, 64, 'T64' as MatMulVariant)).toThrow(/gemm option variant .* got "T64"/);
    expect(tf.memory().numTensors).toBe(before);
    // valid options off webgpu: tfjs's matMul whatever the variant
    for (const variant of ['auto', 'tfjs', 't128', 't64'] as const) {
      const c = gemm(a, b, { variant, unroll: 4 });
      expect(c.shape).toEqual([3, 5]);
      c.dispose();
    }
    tf.dispose([a, b]);
  });

  it('auto picks t128 only when its tiles fill the GPU; off webgpu every variant resolves to tfjs', async (ctx) => {
    expect(GEMM_DEFAULTS).toEqual({ variant: 'auto', unroll: 16 });
    expect(autoTile(8192, 1152)).toBe('t128'); // 64·9 = 576 tiles of 128
    expect(autoTile(2048, 1152)).toBe('t64'); // 16·9 = 144
    expect(autoTile(4096, 2048)).toBe('t128'); // 32·16 = 512, the threshold
    expect(autoTile(4096, 1920)).toBe('t64'); // 32·15 = 480
    await useBackend('cpu', ctx);
    for (const variant of ['auto', 'tfjs', 't128', 't64'] as const) {
      expect(resolveMatmulVariant(4096, 4096, variant)).toBe('tfjs'); // only webgpu has the kernel
    }
    expect(resolveMatmulVariant(4096, 4096)).toBe('tfjs');
  });
});
