import { InputError } from '@t2md/core';
import { describeInfo, freshSeed, hostBuiltSizes, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { ATTENTION_TILES, type AttentionTiles, attention, attentionRef, headsAttention } from './index.js';

interface Case {
  /** Smaller webgpu tiles for this case (the `tiles` option), so small shapes still cross several query and key tiles. */
  tiles?: Partial<AttentionTiles>;
  B: number;
  H: number;
  Lq: number;
  Lk: number;
  Dh: number;
  mask: 'none' | 'random' | 'emptyRow';
  scale?: number;
}

// WebGPU runs on SwiftShader in CI: shapes stay small there, but still cross the tile edges (with
// smaller tiles set for one case), take both the vec4 (Dh % 4 == 0) and the scalar path, and PixArt's 72.
const CASES: Record<string, Case[]> = {
  cpu: [
    { B: 2, H: 3, Lq: 37, Lk: 53, Dh: 20, mask: 'none' },
    { B: 2, H: 2, Lq: 70, Lk: 45, Dh: 7, mask: 'random', scale: 0.7 },
    { B: 2, H: 1, Lq: 9, Lk: 33, Dh: 72, mask: 'emptyRow' },
  ],
  webgpu: [
    { B: 1, H: 2, Lq: 70, Lk: 45, Dh: 8, mask: 'none', tiles: { rows: 32, tile: 16, group: 4, bwdRows: 32, bwdGroup: 8 } },
    { B: 2, H: 2, Lq: 13, Lk: 37, Dh: 5, mask: 'random', scale: 0.7 },
    { B: 2, H: 1, Lq: 9, Lk: 33, Dh: 72, mask: 'emptyRow' },
  ],
};

function makeMask(c: Case, seed: number): tf.Tensor | undefined {
  if (c.mask === 'none') return undefined;
  const r = randomArray(c.B * c.Lk, seed, 0, 1);
  const keep = Array.from(r, (x, i) => {
    const b = Math.floor(i / c.Lk);
    if (c.mask === 'emptyRow' && b === c.B - 1) return false; // the last batch entry attends to nothing
    return x < 0.7 || i % c.Lk === 0; // at least one key kept per (other) batch entry
  });
  return tf.tensor(keep, [c.B, c.Lk], 'bool');
}

/** Keys of the webgpu backend's compiled pipelines (each starts with a program's shaderKey). */
function compiledShaderKeys(): string[] {
  return Object.keys((tf.backend() as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache);
}

describe.each(testBackends())('attention on %s', (name) => {
  it('matches softmax(q kᵀ scale + mask) v and its gradients on fresh random inputs, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    console.log(`attention: running on ${describeInfo(info)}, seed ${seed}`);
    for (const c of CASES[name === 'webgpu' ? 'webgpu' : 'cpu'] ?? []) {
      const label = `${JSON.stringify(c)} seed ${seed}`;
      const qShape = [c.B, c.H, c.Lq, c.Dh];
      const kShape = [c.B, c.H, c.Lk, c.Dh];
      const nq = c.B * c.H * c.Lq * c.Dh;
      const nk = c.B * c.H * c.Lk * c.Dh;
      // q, k scaled up so the softmax is far from uniform (logits of a few units).
      const q = tf.tensor(randomArray(nq, seed + 1, -2, 2), qShape);
      const k = tf.tensor(randomArray(nk, seed + 2, -2, 2), kShape);
      const v = tf.tensor(randomArray(nk, seed + 3), kShape);
      const dy = tf.tensor(randomArray(nq, seed + 4), qShape);
      const keyMask = makeMask(c, seed + 5);
      const opts = { keyMask, scale: c.scale };
      const kernelOpts = { ...opts, ...(c.tiles ? { tiles: c.tiles } : {}) };
      await withNoLeaks(async () => {
        const y = attention(q, k, v, kernelOpts);
        const yRef = attentionRef(q, k, v, opts);
        const [yv, yr] = [await y.data(), await yRef.data()];
        const e = relErr(yv, yr);
        expect(e, `out ${label}`).toBeLessThan(1e-4);
        if (c.mask === 'emptyRow') {
          const rowLen = c.H * c.Lq * c.Dh;
          const last = Array.from(yv.slice(yv.length - rowLen));
          expect(
            last.every((x) => x === 0),
            `fully masked rows are zero, ${label}`,
          ).toBe(true);
        }
        const f = (a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => attention(a, b, d, kernelOpts);
        const fRef = (a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => attentionRef(a, b, d, opts);
        let g: tf.Tensor[] = [];
        const hostSizes = await hostBuiltSizes(async () => {
          g = tf.grads(f)([q, k, v], dy);
          await Promise.all(g.map((t) => t.data()));
        });
        // Only scalars and the [1, 1] placeholder of an absent mask may come from the host: nothing like
        // the zero dy of a [B, H, Lq] log-sum-exp output or an all-true [B, Lk] mask.
        expect(Math.max(0, ...hostSizes), `largest host-built tensor, ${label}`).toBeLessThanOrEqual(1);
        const gRef = tf.grads(fRef)([q, k, v], dy);
        const errs: number[] = [];
        for (let i = 0; i < 3; i++) {
          const [a, b] = [await g[i]!.data(), await gRef[i]!.data()];
          errs.push(relErr(a, b));
          expect(relErr(a, b), `d${'qkv'[i]} ${label}`).toBeLessThan(1e-3);
          expect(Array.from(a).every(Number.isFinite), `finite d${'qkv'[i]} ${label}`).toBe(true);
        }
        if (name === 'webgpu' && c.tiles) {
          // the option reached the kernels: programs keyed by their rows_tile_group were compiled
          const { rows, tile, group, bwdRows, bwdGroup } = { ...ATTENTION_TILES, ...c.tiles };
          for (const key of [`_${rows}_${tile}_${group}_`, `_${bwdRows}_${tile}_${bwdGroup}_`]) {
            expect(
              compiledShaderKeys().some((k) => k.includes(key)),
              `a program keyed ${key}, ${label}`,
            ).toBe(true);
          }
        }
        console.log(
          `attention ${name} ${JSON.stringify(c)}: out ${e.toExponential(2)}, dq/dk/dv ${errs.map((x) => x.toExponential(2)).join(' ')}`,
        );
        tf.dispose([y, yRef, ...g, ...gRef]);
      });
      tf.dispose([q, k, v, dy]);
      keyMask?.dispose();
    }
  });

  it('gives only the gradients asked for, without leaking the others', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    const q = tf.tensor(randomArray(2 * 3 * 4, seed), [1, 2, 3, 4]);
    const k = tf.tensor(randomArray(2 * 5 * 4, seed + 1), [1, 2, 5, 4]);
    await withNoLeaks(async () => {
      const dq = tf.grad((a: tf.Tensor) => tf.sum(attention(a, k, k)))(q);
      const dqRef = tf.grad((a: tf.Tensor) => tf.sum(attentionRef(a, k, k)))(q);
      expect(relErr(await dq.data(), await dqRef.data()), `seed ${seed}`).toBeLessThan(1e-3);
      tf.dispose([dq, dqRef]);
    });
    tf.dispose([q, k]);
  });
});

describe('attention input checks', () => {
  it('rejects bad ranks, mismatched shapes, bad masks and non-float inputs with one InputError naming them', async (ctx) => {
    await useBackend('cpu', ctx);
    const q = tf.zeros([2, 3, 4, 8]);
    const k = tf.zeros([2, 3, 5, 8]);
    const bad: [() => unknown, RegExp][] = [
      [() => attention(tf.zeros([3, 4, 8]), k, k), /q must have rank 4 \[B, H, Lq, Dh\], got shape \[3, 4, 8\]/],
      [
        () => attention(q, tf.zeros([2, 3, 5, 6]), k),
        /k must have shape \[B, H, Lk, Dh\] = \[2, 3, Lk, 8\] to match q \[2, 3, 4, 8\], got \[2, 3, 5, 6\]/,
      ],
      [() => attention(q, tf.zeros([1, 3, 5, 8]), k), /k must have shape .* got \[1, 3, 5, 8\]/],
      [() => attention(q, tf.zeros([2, 4, 5, 8]), k), /k must have shape .* got \[2, 4, 5, 8\]/],
      [() => attention(q, k, tf.zeros([2, 3, 6, 8])), /v must have the shape of k \[2, 3, 5, 8\].* got \[2, 3, 6, 8\]/],
      [() => attention(q, k, k, { keyMask: tf.ones([2, 4], 'bool') }), /keyMask must have shape \[B, Lk\] = \[2, 5\].* got \[2, 4\]/],
      [() => attention(q, k, k, { keyMask: tf.ones([2, 5], 'int32') }), /keyMask must be bool .* got int32 of shape \[2, 5\]/],
      [() => attention(tf.zeros([2, 3, 4, 8], 'int32'), k, k), /q must be float32, got int32/],
      [() => attention(q, k, k, { scale: Number.NaN }), /scale must be a finite number/],
      [() => attention(q, k, k, { scoreBlock: 0 }), /scoreBlock must be a positive integer, got 0/],
      [() => attention(q, k, k, { tiles: { tile: 30 } }), /tiles \{"tile":30\} gives .*: tile must be a multiple of group and bwdGroup/],
      [() => attention(q, k, k, { tiles: { rows: 16 } }), /tile must be .* at most rows and bwdRows/],
      [() => attention(q, k, k, { tiles: { bwdGroup: 3 } }), /tile must be a multiple of group and bwdGroup/],
      [() => attention(q, k, k, { tiles: { group: 0 } }), /tiles \{"group":0\}: group must be a positive integer, got 0/],
      [() => attention(q, k, k, { tiles: { tyle: 16 } as Partial<AttentionTiles> }), /unknown tyle; the sizes are rows, tile, group/],
      [
        () =>
          headsAttention(tf.zeros([8, 24]), tf.zeros([8, 24]), {
            batch: 2,
            heads: 1,
            headDim: 8,
            kOffset: 8,
            vOffset: 16,
            tiles: { tile: 6 },
          }),
        /attention option tiles \{"tile":6\}.*multiple of group/,
      ],
    ];
    for (const [f, re] of bad) {
      let err: unknown;
      try {
        tf.tidy(() => {
          f();
        });
      } catch (e) {
        err = e;
      }
      expect(err, String(re)).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(re);
    }
    // the defaults pass their own check
    expect(() => attention(q, k, k, { tiles: { ...ATTENTION_TILES } }).dispose()).not.toThrow();
    tf.dispose([q, k]);
  });
});
