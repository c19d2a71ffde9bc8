import { InputError } from '@t2md/core';
import { freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { bothDirections, fromBothDirections, gatherTokens, toBothDirections } from './gather.js';
import { invertPermutation, reversePermutation, type ScanOrder, scanPermutation } from './scan-order.js';

const GRIDS: [number, number][] = [
  [1, 1],
  [1, 7],
  [5, 1],
  [3, 3],
  [4, 6],
  [7, 2],
  [16, 9],
];
const ORDERS: ScanOrder[] = ['WM', 'HM'];
const VARIANTS = [{}, { reverse: true }, { snake: true }, { snake: true, reverse: true }];

function isBijection(perm: Int32Array): boolean {
  const seen = new Uint8Array(perm.length);
  for (const g of perm) {
    if (g < 0 || g >= perm.length || seen[g]) return false;
    seen[g] = 1;
  }
  return true;
}

describe('scanPermutation', () => {
  it('is a bijection with a correct inverse for every grid, order and variant', () => {
    for (const [H, W] of GRIDS) {
      for (const order of ORDERS) {
        for (const opts of VARIANTS) {
          const { perm, inv } = scanPermutation(order, H, W, opts);
          const tag = `${order} ${H}x${W} ${JSON.stringify(opts)}`;
          expect(perm.length, tag).toBe(H * W);
          expect(isBijection(perm), tag).toBe(true);
          for (let i = 0; i < perm.length; i++) {
            expect(inv[perm[i]], tag).toBe(i);
            expect(perm[inv[i]], tag).toBe(i);
          }
        }
      }
    }
  });

  it("'WM' is the identity and 'HM' is the transpose (column-major) order", () => {
    for (const [H, W] of GRIDS) {
      const wm = scanPermutation('WM', H, W).perm;
      expect(Array.from(wm)).toEqual(Array.from({ length: H * W }, (_, i) => i));
      // Column-major order of a row-major grid = the row-major order of its transpose, written out.
      const grid = Array.from({ length: H }, (_, h) => Array.from({ length: W }, (_, w) => h * W + w));
      const transposed = Array.from({ length: W }, (_, w) => Array.from({ length: H }, (_, h) => grid[h][w]));
      expect(Array.from(scanPermutation('HM', H, W).perm), `${H}x${W}`).toEqual(transposed.flat());
    }
  });

  it('reverse reverses the plain order, snake alternates lines and keeps neighbours adjacent', () => {
    const [H, W] = [4, 5];
    for (const order of ORDERS) {
      const plain = Array.from(scanPermutation(order, H, W).perm);
      expect(Array.from(scanPermutation(order, H, W, { reverse: true }).perm)).toEqual([...plain].reverse());
      const snake = scanPermutation(order, H, W, { snake: true }).perm;
      for (let i = 1; i < snake.length; i++) {
        const [h0, w0, h1, w1] = [Math.floor(snake[i - 1] / W), snake[i - 1] % W, Math.floor(snake[i] / W), snake[i] % W];
        expect(Math.abs(h0 - h1) + Math.abs(w0 - w1), `${order} step ${i}`).toBe(1);
      }
    }
    // Hand-written 2x3 cases.
    expect(Array.from(scanPermutation('WM', 2, 3, { snake: true }).perm)).toEqual([0, 1, 2, 5, 4, 3]);
    expect(Array.from(scanPermutation('HM', 2, 3).perm)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(Array.from(scanPermutation('HM', 2, 3, { snake: true }).perm)).toEqual([0, 3, 4, 1, 2, 5]);
  });

  it('reversePermutation matches the reverse option', () => {
    for (const [H, W] of GRIDS) {
      for (const order of ORDERS) {
        const r = reversePermutation(scanPermutation(order, H, W, { snake: true }));
        const want = scanPermutation(order, H, W, { snake: true, reverse: true });
        expect(Array.from(r.perm)).toEqual(Array.from(want.perm));
        expect(Array.from(r.inv)).toEqual(Array.from(want.inv));
      }
    }
  });

  it('rejects bad arguments with an InputError', () => {
    expect(() => scanPermutation('XM' as ScanOrder, 2, 2)).toThrow(InputError);
    expect(() => scanPermutation('WM', 0, 2)).toThrow(/H must be an integer/);
    expect(() => scanPermutation('HM', 2, 1.5)).toThrow(/W must be an integer/);
    expect(() => invertPermutation([0, 0, 1])).toThrow(/perm must be a permutation/);
  });
});

describe.each(testBackends())('gatherTokens on %s', (name) => {
  it('reorders tokens, round-trips through the inverse, and its gradient is the inverse gather', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    const [B, H, W, D] = [2, 3, 4, 5];
    const L = H * W;
    const xv = randomArray(B * L * D, seed);
    const x = tf.tensor(xv, [B, L, D]);
    const dy = tf.tensor(randomArray(B * L * D, seed + 1), [B, L, D]);
    const { perm, inv } = scanPermutation('HM', H, W, { snake: true });
    await withNoLeaks(async () => {
      const y = gatherTokens(x, perm, inv);
      const yv = await y.data();
      for (let b = 0; b < B; b++)
        for (let i = 0; i < L; i++) for (let d = 0; d < D; d++) expect(yv[(b * L + i) * D + d]).toBe(xv[(b * L + perm[i]) * D + d]);
      const back = gatherTokens(y, inv);
      expect(Array.from(await back.data())).toEqual(Array.from(xv));
      // d/dx sum(gather(x, perm) * dy) = dy scattered back = gather(dy, inv).
      const g = tf.grad((t: tf.Tensor) => gatherTokens(t, perm, inv))(x, dy);
      const gRef = tf.tidy(() => tf.gather(dy, tf.tensor1d(inv, 'int32'), 1));
      expect(relErr(await g.data(), await gRef.data()), `seed ${seed}`).toBe(0);
      tf.dispose([y, back, g, gRef]);
    });
    tf.dispose([x, dy]);
  });

  it('runs a scan and its reverse as one batch, and puts both back in grid order', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    const [B, H, W, D] = [2, 3, 5, 3];
    const L = H * W;
    const xv = randomArray(B * L * D, seed);
    const x = tf.tensor(xv, [B, L, D]);
    const { perm, inv } = scanPermutation('HM', H, W, { snake: true });
    const t = bothDirections(perm, inv);
    const at = (v: ArrayLike<number>, b: number, i: number, d: number, len = L) => v[(b * len + i) * D + d];
    await withNoLeaks(async () => {
      const xs = toBothDirections(x, t);
      expect(xs.shape).toEqual([2 * B, L, D]);
      const xsv = await xs.data();
      for (let b = 0; b < B; b++)
        for (let i = 0; i < L; i++)
          for (let d = 0; d < D; d++) {
            expect(at(xsv, 2 * b, i, d)).toBe(at(xv, b, perm[i], d));
            expect(at(xsv, 2 * b + 1, i, d)).toBe(at(xv, b, perm[L - 1 - i], d));
          }
      // Back: [B, L, 2D] with the forward copy in channels 0..D-1 and the reversed one in D..2D-1.
      const back = fromBothDirections(xs, t);
      expect(back.shape).toEqual([B, L, 2 * D]);
      const bv = await back.data();
      for (let b = 0; b < B; b++)
        for (let g = 0; g < L; g++)
          for (let d = 0; d < D; d++) {
            expect(bv[(b * L + g) * 2 * D + d]).toBe(at(xv, b, g, d));
            expect(bv[(b * L + g) * 2 * D + D + d]).toBe(at(xv, b, g, d));
          }
      // Gradient of toBothDirections: each token was read twice, so dx = dy(forward read) + dy(reversed read).
      const dyv = randomArray(2 * B * L * D, seed + 1);
      const dy = tf.tensor(dyv, [2 * B, L, D]);
      const gx = tf.grad((v: tf.Tensor) => toBothDirections(v, t))(x, dy);
      const g = await gx.data();
      const want = new Float32Array(B * L * D);
      for (let b = 0; b < B; b++)
        for (let gi = 0; gi < L; gi++)
          for (let d = 0; d < D; d++) want[(b * L + gi) * D + d] = at(dyv, 2 * b, inv[gi], d) + at(dyv, 2 * b + 1, L - 1 - inv[gi], d);
      expect(relErr(g, want), `seed ${seed}`).toBeLessThan(1e-6);
      // Gradient of fromBothDirections: the inverse gather.
      const dz = tf.tensor(randomArray(B * L * 2 * D, seed + 2), [B, L, 2 * D]);
      const gz = tf.grad((v: tf.Tensor) => fromBothDirections(v, t))(xs, dz);
      // entry 2b, position i came from grid token perm[i] (channels 0..D-1); entry 2b+1 from perm[L-1-i] (channels D..2D-1)
      const gzv = await gz.data();
      const dzv = await dz.data();
      for (let b = 0; b < B; b++)
        for (let i = 0; i < L; i++)
          for (let d = 0; d < D; d++) {
            expect(at(gzv, 2 * b, i, d)).toBe(dzv[(b * L + perm[i]) * 2 * D + d]);
            expect(at(gzv, 2 * b + 1, i, d)).toBe(dzv[(b * L + perm[L - 1 - i]) * 2 * D + D + d]);
          }
      tf.dispose([xs, back, dy, dz, gz, gx]);
    });
    x.dispose();
  });

  it('rejects a permutation of the wrong length', async (ctx) => {
    await useBackend(name, ctx);
    const x = tf.zeros([1, 6, 2]);
    expect(() => gatherTokens(x, scanPermutation('WM', 2, 2).perm)).toThrow(/perm has 4 entries but x has L = 6 tokens/);
    expect(() => gatherTokens(tf.zeros([6]), new Int32Array(6))).toThrow(/x must have rank >= 2/);
    x.dispose();
  });
});
