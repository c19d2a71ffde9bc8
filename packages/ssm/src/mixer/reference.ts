/**
 * A Mamba-2 mixer written the plain way, only tfjs-core ops, for tests: one in_proj matmul split by
 * columns, the conv as explicit taps, and the SSD as the token-by-token recurrence
 * `state_t = exp(dt_t A) state_{t-1} + dt_t x_t B_t^T`, `y_t = state_t C_t + D x_t`.
 * Slow (a few ops per token): small shapes only. Differentiable, so gradients can be compared too.
 */
import { linear } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { bothDirections, fromBothDirections, toBothDirections } from '../scan-order/gather.js';
import { scanPermutation } from '../scan-order/scan-order.js';
import type { BidirectionalMamba } from './bidirectional.js';
import { type Mamba2Config, mamba2Dims } from './config.js';
import { mamba2Forward } from './mamba2.js';

/**
 * @param w weights by state-dict name (PyTorch layouts)
 * @param x `[B, L, D]`
 * @returns `[B, L, D]`
 */
export function mamba2Reference(w: Record<string, tf.Tensor>, x: tf.Tensor, c: Required<Mamba2Config>): tf.Tensor {
  return tf.tidy(() => {
    const [Bsz, L, Dm] = x.shape as number[];
    const { dInner, nheads: H, convDim } = mamba2Dims(c);
    const [P, G, N, K] = [c.headdim, c.ngroups, c.dState, c.dConv];
    const zxbcdt = tf.reshape(tf.matMul(tf.reshape(x, [Bsz * L, Dm]), tf.transpose(w['in_proj.weight'])), [Bsz, L, -1]);
    const [z, xBCraw, dtRaw] = tf.split(zxbcdt, [dInner, convDim, H], 2);

    // Conv: y[t] = bias + sum_k w[:, k] * x[t - (K - 1) + k], one tap at a time, zeros before t = 0.
    const cw = tf.reshape(w['conv1d.weight'], [convDim, K]);
    const steps: tf.Tensor[] = [];
    for (let t = 0; t < L; t++) {
      let acc: tf.Tensor = w['conv1d.bias'];
      for (let k = 0; k < K; k++) {
        const src = t - (K - 1) + k;
        if (src < 0) continue;
        const xt = tf.reshape(tf.slice(xBCraw, [0, src, 0], [Bsz, 1, convDim]), [Bsz, convDim]);
        acc = tf.add(acc, tf.mul(xt, tf.reshape(tf.slice(cw, [0, k], [convDim, 1]), [convDim])));
      }
      steps.push(tf.broadcastTo(acc, [Bsz, convDim]));
    }
    const conv = tf.stack(steps, 1); // [B, L, convDim]
    const xBC = tf.mul(conv, tf.sigmoid(conv));
    const [xs, Bc, Cc] = tf.split(xBC, [dInner, G * N, G * N], 2);
    const xh = tf.reshape(xs, [Bsz, L, H, P]);
    // Head h reads group floor(h / (H / G)): each group repeated over its H / G consecutive heads
    // (a broadcasting multiply: the gradients of gather and tile need kernels wasm lacks).
    const toHeads = (t: tf.Tensor) => tf.reshape(tf.mul(tf.reshape(t, [Bsz, L, G, 1, N]), tf.ones([1, 1, 1, H / G, 1])), [Bsz, L, H, N]);
    const Bh = toHeads(Bc); // [B, L, H, N]
    const Ch = toHeads(Cc); // [B, L, H, N]
    let dt = tf.softplus(tf.add(dtRaw, w.dt_bias)); // [B, L, H]
    const [lo, hi] = c.dtLimit;
    if (lo > 0 || hi != null) dt = tf.clipByValue(dt, lo, hi ?? Number.MAX_VALUE);
    const A = tf.neg(tf.exp(w.A_log)); // [H]

    let state: tf.Tensor = tf.zeros([Bsz, H, P, N]);
    const ys: tf.Tensor[] = [];
    for (let t = 0; t < L; t++) {
      const dtT = tf.reshape(tf.slice(dt, [0, t, 0], [Bsz, 1, H]), [Bsz, H, 1, 1]);
      const xT = tf.reshape(tf.slice(xh, [0, t, 0, 0], [Bsz, 1, H, P]), [Bsz, H, P, 1]);
      const bT = tf.reshape(tf.slice(Bh, [0, t, 0, 0], [Bsz, 1, H, N]), [Bsz, H, 1, N]);
      const cT = tf.reshape(tf.slice(Ch, [0, t, 0, 0], [Bsz, 1, H, N]), [Bsz, H, 1, N]);
      const decay = tf.exp(tf.mul(dtT, tf.reshape(A, [1, H, 1, 1])));
      state = tf.add(tf.mul(decay, state), tf.mul(tf.mul(dtT, xT), bT)); // [B, H, P, N]
      const yT = tf.add(tf.sum(tf.mul(state, cT), 3), tf.mul(tf.reshape(xT, [Bsz, H, P]), tf.reshape(w.D, [1, H, 1])));
      ys.push(yT); // [B, H, P]
    }
    const y = tf.reshape(tf.stack(ys, 1), [Bsz, L, dInner]);

    // RMSNormGated(norm_before_gate=False), groups of dInner / G channels.
    const g = tf.mul(y, tf.mul(z, tf.sigmoid(z)));
    const gg = tf.reshape(g, [Bsz, L, G, dInner / G]);
    const rms = tf.sqrt(tf.add(tf.mean(tf.mul(gg, gg), 3, true), c.normEps));
    const normed = tf.mul(tf.reshape(tf.div(gg, rms), [Bsz, L, dInner]), w['norm.weight']);
    return tf.reshape(tf.matMul(tf.reshape(normed, [Bsz * L, dInner]), tf.transpose(w['out_proj.weight'])), [Bsz, L, Dm]);
  });
}

/**
 * `BidirectionalMamba`'s first implementation, kept as the reference of the current one: the whole
 * Mamba-2 mixer (in_proj to out_proj) on both scan orders as 2B sequences, back into grid order, then
 * the merge (concat → Linear(2D → D), or sum). Same weights, same numbers up to float rounding.
 * @param x `[B, L, D]` tokens of the row-major grid `[H, W]`
 * @returns `[B, L, D]`
 */
export function bidirectionalReference(m: BidirectionalMamba, x: tf.Tensor, grid: [number, number]): tf.Tensor {
  return tf.tidy(() => {
    const [B, L, D] = x.shape as number[];
    const w = m.weights();
    const { perm, inv } = scanPermutation(m.config.order, grid[0], grid[1], { snake: m.config.snake });
    const t = bothDirections(perm, inv);
    const ys = mamba2Forward(w, toBothDirections(x, t), m.mixer.config); // [2B, L, D]
    const cat = fromBothDirections(ys, t); // [B, L, 2D]
    if (m.config.merge === 'sum') return tf.sum(tf.reshape(cat, [B, L, 2, D]), 2);
    return tf.reshape(linear(tf.reshape(cat, [B * L, 2 * D]), w['merge.weight']!, w['merge.bias']), [B, L, D]);
  });
}
