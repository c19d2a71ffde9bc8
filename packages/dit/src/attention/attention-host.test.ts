import { HostOps } from '@t2md/core';
import { describeInfo, freshSeed, randomArray, relErr, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attentionBackwardValues, attentionForwardValues } from '../testing.js';
import { registerAttentionKernels } from './attention.js';
import { sameKeyGroups } from './attention-host.js';
import { ATTENTION, ATTENTION_GRAD, type AttentionAttrs } from './attention-kernels.js';
import { ATTENTION_TILES, LSE_EMPTY } from './attention-webgpu.js';

interface Case {
  B: number;
  H: number;
  Lq: number;
  Lk: number;
  Dh: number;
  mask: 'none' | 'random' | 'emptyRow';
  /** Scores per block: small ones split the queries into several blocks. */
  scoreBlock: number;
}

const CASES: Case[] = [
  { B: 2, H: 3, Lq: 37, Lk: 53, Dh: 20, mask: 'none', scoreBlock: 1 << 20 },
  { B: 2, H: 2, Lq: 70, Lk: 45, Dh: 7, mask: 'random', scoreBlock: 200 }, // 4 rows a block
  { B: 3, H: 1, Lq: 9, Lk: 33, Dh: 32, mask: 'emptyRow', scoreBlock: 1 }, // one row a block
  // few keys (H·Lk ≤ STACKED_KEYS, as cross-attention to a caption): on wasm each batch entry's heads in one pair of products
  { B: 3, H: 4, Lq: 29, Lk: 7, Dh: 8, mask: 'emptyRow', scoreBlock: 1 << 20 },
  { B: 2, H: 3, Lq: 40, Lk: 11, Dh: 16, mask: 'random', scoreBlock: 1 << 20 },
  { B: 2, H: 2, Lq: 17, Lk: 64, Dh: 5, mask: 'none', scoreBlock: 1 << 20 },
];

/** Backend data the kernels hold: an intermediate a kernel forgot would show here, not in numTensors. */
const dataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();

describe.each(['cpu', 'wasm'] as const)('attention host kernels on %s', (name) => {
  it('match the plain loops (out, log-sum-exp and all three gradients) on fresh random inputs, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    console.log(`attention host: ${describeInfo(info)}, seed ${seed}`);
    registerAttentionKernels();
    for (const [ci, c] of CASES.entries()) {
      const s0 = seed + 101 * ci;
      const label = `${JSON.stringify(c)} seed ${seed}`;
      const nq = c.B * c.H * c.Lq * c.Dh;
      const nk = c.B * c.H * c.Lk * c.Dh;
      const [qv, kv, vv, dyv] = [
        randomArray(nq, s0 + 1, -2, 2),
        randomArray(nk, s0 + 2, -2, 2),
        randomArray(nk, s0 + 3),
        randomArray(nq, s0 + 4),
      ];
      const keep = Array.from(randomArray(c.B * c.Lk, s0 + 5, 0, 1), (x, i) => {
        if (c.mask === 'none') return 1;
        if (c.mask === 'emptyRow' && Math.floor(i / c.Lk) === 1) return 0; // batch entry 1 attends to nothing
        return x < 0.6 || i % c.Lk === 3 ? 1 : 0;
      });
      const mask = c.mask === 'none' ? undefined : Float32Array.from(keep);
      const scale = 0.8 / Math.sqrt(c.Dh);
      const d = { B: c.B, H: c.H, Lq: c.Lq, Lk: c.Lk, Dh: c.Dh };
      const fwd = attentionForwardValues(qv, kv, vv, mask, d, scale);
      const bwd = attentionBackwardValues(qv, kv, vv, mask, fwd.out, fwd.lse, dyv, d, scale);
      const [q, k, v, dy] = [
        tf.tensor(qv, [c.B, c.H, c.Lq, c.Dh]),
        tf.tensor(kv, [c.B, c.H, c.Lk, c.Dh]),
        tf.tensor(vv, [c.B, c.H, c.Lk, c.Dh]),
        tf.tensor(dyv, [c.B, c.H, c.Lq, c.Dh]),
      ];
      const keyMask = mask ? tf.tensor(keep, [c.B, c.Lk], 'bool') : tf.zeros([1, 1], 'bool');
      const attrs = { scale, hasMask: mask != null, tiles: ATTENTION_TILES, scoreBlock: c.scoreBlock } satisfies AttentionAttrs;
      const before = dataIds();
      await withNoLeaks(async () => {
        // few keys: the heads in stacked products (wasm's choice on several threads) and one by one (on one)
        for (const stackHeads of [true, false]) {
          const [o, l] = tf
            .engine()
            .runKernel(ATTENTION, { q, k, v, keyMask }, { ...attrs, stackHeads } as unknown as tf.NamedAttrMap) as tf.Tensor[];
          expect(relErr(await o!.data(), fwd.out), `out, stackHeads ${stackHeads}, ${label}`).toBeLessThan(1e-5);
          const lv = await l!.data();
          expect(
            Array.from(fwd.lse).every((x, i) =>
              x < LSE_EMPTY ? Math.abs(lv[i]! - x) <= 1e-5 * Math.max(1, Math.abs(x)) : lv[i] === Math.fround(LSE_EMPTY),
            ),
            `lse, stackHeads ${stackHeads}, ${label}`,
          ).toBe(true);
          tf.dispose([o!, l!]);
        }
        {
          // as attention() calls it (hostLse false): the same out
          const [o, l] = tf
            .engine()
            .runKernel(ATTENTION, { q, k, v, keyMask }, { ...attrs, hostLse: false } as unknown as tf.NamedAttrMap) as tf.Tensor[];
          expect(relErr(await o!.data(), fwd.out), `out without lse, ${label}`).toBeLessThan(1e-5);
          tf.dispose([o!, l!]);
        }
        const [out, lse] = tf.engine().runKernel(ATTENTION, { q, k, v, keyMask }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        const grads = tf
          .engine()
          .runKernel(ATTENTION_GRAD, { q, k, v, keyMask, out: out!, lse: lse!, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        const [o, l] = [await out!.data(), await lse!.data()];
        const eOut = relErr(o, fwd.out);
        // rows with keys: the log-sum-exp itself; rows without: the sentinel, exactly
        const live = Array.from(fwd.lse, (x, i) => (x < LSE_EMPTY ? i : -1)).filter((i) => i >= 0);
        const eLse = relErr(
          live.map((i) => l[i]!),
          live.map((i) => fwd.lse[i]!),
        );
        expect(eOut, `out ${label}`).toBeLessThan(1e-5);
        expect(eLse, `lse ${label}`).toBeLessThan(1e-6);
        expect(
          Array.from(fwd.lse).every((x, i) => x < LSE_EMPTY || l[i] === Math.fround(LSE_EMPTY)),
          `empty rows ${label}`,
        ).toBe(true);
        const errs: number[] = [];
        for (const [i, want] of [bwd.dq, bwd.dk, bwd.dv].entries()) {
          const got = await grads[i]!.data();
          errs.push(relErr(got, want));
          expect(errs[i], `d${'qkv'[i]} ${label}`).toBeLessThan(1e-4);
        }
        console.log(
          `attention host ${name} ${JSON.stringify(c)}: out ${eOut.toExponential(2)}, lse ${eLse.toExponential(2)}, grads ${errs.map((e) => e.toExponential(2)).join(' ')}`,
        );
        tf.dispose([out!, lse!, ...grads]);
      });
      expect(dataIds(), `backend data after ${label}`).toBe(before);
      tf.dispose([q, k, v, dy, keyMask]);
    }
  });

  it('runs entries with the same keys, values and mask as one (wasm), with the results of each entry alone', async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    // a guided batch's layout: 3 entries share keys A (mask a), 2 share keys B (mask b), one has A's
    // keys with B's mask (a group of its own), and 2 share keys that are all masked
    const [H, Lq, Lk, Dh] = [4, 33, 9, 8];
    const keyOf = [0, 0, 1, 0, 1, 0, 2, 2];
    const maskOf = [0, 0, 1, 0, 1, 1, 2, 2];
    const B = keyOf.length;
    const sets = [0, 1, 2].map((i) => [randomArray(H * Lk * Dh, seed + 10 * i, -2, 2), randomArray(H * Lk * Dh, seed + 10 * i + 1)]);
    const masks = [Array.from({ length: Lk }, (_, j) => j % 3 !== 1), Array.from({ length: Lk }, (_, j) => j < 4), Array(Lk).fill(false)];
    const stack = (f: (b: number) => ArrayLike<number>) => Float32Array.from(Array.from({ length: B }, (_, b) => Array.from(f(b))).flat());
    const q = tf.tensor(randomArray(B * H * Lq * Dh, seed + 99, -2, 2), [B, H, Lq, Dh]);
    const k = tf.tensor(
      stack((b) => sets[keyOf[b]!]![0]!),
      [B, H, Lk, Dh],
    );
    const v = tf.tensor(
      stack((b) => sets[keyOf[b]!]![1]!),
      [B, H, Lk, Dh],
    );
    const keyMask = tf.tensor(
      stack((b) => masks[maskOf[b]!]!.map(Number)),
      [B, Lk],
      'bool',
    );
    const attrs = { scale: 0.3, hasMask: true, tiles: ATTENTION_TILES, scoreBlock: 1 << 20 } satisfies AttentionAttrs;
    const label = `${describeInfo(info)}, seed ${seed}`;
    // the groups the wasm kernel runs as one entry each (so the comparisons below test the grouped path there)
    const ops = new HostOps(tf.backend());
    expect(sameKeyGroups(ops, k, v, keyMask, B, Lk)).toEqual([[0, 1, 3], [2, 4], [5], [6, 7]]);
    ops.dispose();
    const before = dataIds();
    await withNoLeaks(async () => {
      for (const stackHeads of [true, false]) {
        const run = (qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor, mi: tf.Tensor) =>
          tf.engine().runKernel(ATTENTION, { q: qi, k: ki, v: vi, keyMask: mi }, {
            ...attrs,
            stackHeads,
          } as unknown as tf.NamedAttrMap) as tf.Tensor[];
        const [o, l] = run(q, k, v, keyMask);
        const [ov, lv] = [await o!.data(), await l!.data()];
        for (let b = 0; b < B; b++) {
          // one entry alone (B = 1: never grouped)
          const one = (x: tf.Tensor) => tf.slice(x, b, 1);
          const parts = [one(q), one(k), one(v), one(keyMask)];
          const [o1, l1] = run(parts[0]!, parts[1]!, parts[2]!, parts[3]!);
          const [n, m] = [H * Lq * Dh, H * Lq];
          expect(Array.from(ov.subarray(b * n, (b + 1) * n)), `out of entry ${b}, stackHeads ${stackHeads}, ${label}`).toEqual(
            Array.from(await o1!.data()),
          );
          expect(Array.from(lv.subarray(b * m, (b + 1) * m)), `lse of entry ${b}, stackHeads ${stackHeads}, ${label}`).toEqual(
            Array.from(await l1!.data()),
          );
          tf.dispose([...parts, o1!, l1!]);
        }
        const fwd = attentionForwardValues(
          (await q.data()) as Float32Array,
          (await k.data()) as Float32Array,
          (await v.data()) as Float32Array,
          Float32Array.from(await keyMask.data()),
          { B, H, Lq, Lk, Dh },
          attrs.scale,
        );
        expect(relErr(ov, fwd.out), `out vs the loops, stackHeads ${stackHeads}, ${label}`).toBeLessThan(1e-5);
        tf.dispose([o!, l!]);
      }
    });
    expect(dataIds()).toBe(before);
    tf.dispose([q, k, v, keyMask]);
  });
});
