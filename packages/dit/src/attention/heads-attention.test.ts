import { describeInfo, freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attentionRef } from './attention-ref.js';
import { headsAttention } from './index.js';

/** The reference: slice the column blocks, split heads, plain-op attention, merge heads. */
function reference(q: tf.Tensor, kv: tf.Tensor, B: number, H: number, Dh: number, offs: [number, number, number], mask?: tf.Tensor) {
  const D = H * Dh;
  return tf.tidy(() => {
    const heads = (t: tf.Tensor, off: number) =>
      tf.transpose(tf.reshape(tf.slice(t, [0, off], [-1, D]), [B, t.shape[0]! / B, H, Dh]), [0, 2, 1, 3]);
    const o = attentionRef(heads(q, offs[0]), heads(kv, offs[1]), heads(kv, offs[2]), mask ? { keyMask: mask } : {});
    return tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [q.shape[0]!, D]);
  });
}

describe.each(testBackends())('headsAttention on %s', (name) => {
  it('matches split-heads attention for a fused qkv and for q with a separate masked kv, with gradients, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`headsAttention: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    // [B, H, Dh, Lq, Lk]: vec4 and scalar head dims, keys fewer and more than queries
    for (const [B, H, Dh, Lq, Lk] of [
      [2, 2, 8, 19, 7],
      [1, 3, 5, 6, 11],
    ]) {
      const D = H * Dh;
      // the vec4 case on small webgpu tiles (the tiles option): 3 query row blocks, 2 key tiles, 5 query tiles
      const tiles = Dh === 8 ? { rows: 8, tile: 4, group: 4, bwdRows: 8, bwdGroup: 4 } : undefined;
      const qkv = tf.tensor(randomArray(B * Lq * 3 * D, seed + Dh), [B * Lq, 3 * D]);
      const q = tf.tensor(randomArray(B * Lq * D, seed + 2 * Dh), [B * Lq, D]);
      const kv = tf.tensor(randomArray(B * Lk * 2 * D, seed + 3 * Dh), [B * Lk, 2 * D]);
      const maskVals = Array.from({ length: B * Lk }, (_, i) => i % Lk !== 2 && i % 3 !== 1);
      const mask = tf.tensor(maskVals, [B, Lk], 'bool');
      const dyS = tf.tensor(randomArray(B * Lq * D, seed + 4 * Dh), [B * Lq, D]);
      await withNoLeaks(async () => {
        const label = `B${B} H${H} Dh${Dh} tiles ${JSON.stringify(tiles)} seed ${seed}`;
        // self-attention on one fused projection: gradient into all three column blocks
        const f = (t: tf.Tensor) => headsAttention(t, t, { batch: B, heads: H, headDim: Dh, kOffset: D, vOffset: 2 * D, tiles });
        const fr = (t: tf.Tensor) => reference(t, t, B, H, Dh, [0, D, 2 * D]);
        const [y, yr] = [f(qkv), fr(qkv)];
        expect(y.shape).toEqual([B * Lq, D]);
        expect(relErr(await y.data(), await yr.data()), `self ${label}`).toBeLessThan(1e-5);
        const [g] = tf.grads(f)([qkv], dyS);
        const [gr] = tf.grads(fr)([qkv], dyS);
        expect(relErr(await g!.data(), await gr!.data()), `self grad ${label}`).toBeLessThan(1e-4);
        // cross-attention: q alone, k then v in one matrix, a key mask
        const c = (a: tf.Tensor, b: tf.Tensor) =>
          headsAttention(a, b, { batch: B, heads: H, headDim: Dh, kOffset: 0, vOffset: D, keyMask: mask, tiles });
        const cr = (a: tf.Tensor, b: tf.Tensor) => reference(a, b, B, H, Dh, [0, 0, D], mask);
        const [z, zr] = [c(q, kv), cr(q, kv)];
        expect(relErr(await z.data(), await zr.data()), `cross ${label}`).toBeLessThan(1e-5);
        const gc = tf.grads(c)([q, kv], dyS);
        const gcr = tf.grads(cr)([q, kv], dyS);
        for (let i = 0; i < 2; i++)
          expect(relErr(await gc[i]!.data(), await gcr[i]!.data()), `cross grad ${i} ${label}`).toBeLessThan(1e-4);
        // k and v not filling their matrix (a gap before them): the gradient has zeros there
        const wide = tf.tidy(() => tf.concat([tf.zeros([B * Lk, D]), kv], 1)); // [B·Lk, 3D], k at D, v at 2D
        const cw = (a: tf.Tensor, b: tf.Tensor) =>
          headsAttention(a, b, { batch: B, heads: H, headDim: Dh, kOffset: D, vOffset: 2 * D, keyMask: mask });
        const cwr = (a: tf.Tensor, b: tf.Tensor) => reference(a, b, B, H, Dh, [0, D, 2 * D], mask);
        const gw = tf.grads(cw)([q, wide], dyS);
        const gwr = tf.grads(cwr)([q, wide], dyS);
        for (let i = 0; i < 2; i++)
          expect(relErr(await gw[i]!.data(), await gwr[i]!.data()), `gapped grad ${i} ${label}`).toBeLessThan(1e-4);
        if (name === 'webgpu' && tiles) {
          // the option reached the packed kernels: their programs are keyed rows_tile_group (8_4_4 forward and backward)
          const compiled = Object.keys((tf.backend() as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache);
          expect(compiled.filter((k) => k.startsWith('t2md_attn_') && k.includes('_8_4_4_')).length, label).toBeGreaterThanOrEqual(4);
        }
        tf.dispose([y, yr, g!, gr!, z, zr, ...gc, ...gcr, wide, ...gw, ...gwr]);
      });
      tf.dispose([qkv, q, kv, mask, dyS]);
    }
  });

  it('rejects column blocks that do not fit and a mis-shaped mask', async (ctx) => {
    await useBackend(name, ctx);
    const t = tf.zeros([6, 12]);
    tf.dispose(headsAttention(t, t, { batch: 2, heads: 1, headDim: 4, kOffset: 4, vOffset: 8 }));
    expect(() => headsAttention(t, t, { batch: 2, heads: 1, headDim: 4, kOffset: 4, vOffset: 9 })).toThrow(
      /vOffset 9 \+ heads·headDim 4 must fit the 12 columns/,
    );
    expect(() => headsAttention(t, t, { batch: 4, heads: 1, headDim: 4, kOffset: 4, vOffset: 8 })).toThrow(/batch \(4\) must divide/);
    const m = tf.ones([2, 5], 'bool');
    if (name === 'webgpu')
      expect(() => headsAttention(t, t, { batch: 2, heads: 1, headDim: 4, kOffset: 4, vOffset: 8, keyMask: m })).toThrow(
        /keyMask must be a bool tensor of shape \[B, Lk\] = \[2, 3\]/,
      );
    tf.dispose([t, m]);
  });
});
