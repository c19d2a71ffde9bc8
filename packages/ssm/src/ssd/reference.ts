/**
 * `ssdScanRef`: the Mamba-2 SSD scan made only of tfjs-core ops (the chunked "minimal SSD" of the
 * Mamba-2 paper, listing 1), so `tf.grads` differentiates it on any backend. Tests compare the fused
 * kernels with it; it is slow and memory-hungry (O(L·Q) per head and O((L/Q)²) for state passing).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SsdScanInputs, SsdScanOptions, SsdScanResult } from './types.js';
import { validateSsd } from './validate.js';

/** Lower-triangular (i >= j) boolean mask [T, T]. */
function lowerMask(T: number, strict: boolean): tf.Tensor {
  const i = tf.reshape(tf.range(0, T, 1, 'int32'), [T, 1]);
  const j = tf.reshape(tf.range(0, T, 1, 'int32'), [1, T]);
  return strict ? tf.greater(i, j) : tf.greaterEqual(i, j);
}

/**
 * exp(segsum(a)) masked to i >= j, computed stably: sum_{k=j+1..i} a_k by a masked cumsum (never
 * exp(cs_i) / exp(cs_j), which is 0/0 under strong decay). a: [R, T] -> [R, T, T]. Ranks stay <= 3:
 * tfjs-webgpu has no rank-5 `where`.
 */
function expSegsum(a: tf.Tensor): tf.Tensor {
  const [R, T] = a.shape as [number, number];
  const rep = tf.mul(tf.expandDims(a, -1), tf.ones([T])); // [R, T(i), T(j)] = a_i
  const strict = tf.broadcastTo(lowerMask(T, true), [R, T, T]);
  const incl = tf.broadcastTo(lowerMask(T, false), [R, T, T]);
  // cumsum over i as a matmul with a lower-triangular ones matrix (tfjs's cumsum gradient is unreliable off the last axis)
  const s = tf.matMul(tf.cast(incl, 'float32'), tf.where(strict, rep, tf.zerosLike(rep)));
  return tf.where(incl, tf.exp(tf.where(incl, s, tf.zerosLike(s))), tf.zerosLike(s));
}

/**
 * Same contract as `ssdScan`, from tfjs-core ops only. Shapes: x [B, L, H, P], dt [B, L, H], A [H],
 * B/C [B, L, G, N], D [H] or [H, P], z [B, L, H, P], dtBias [H], initialStates [B, H, P, N].
 */
export function ssdScanRef(inputs: SsdScanInputs, options: SsdScanOptions = {}): SsdScanResult {
  const at = validateSsd(inputs, options);
  const out = tf.tidy(() => {
    const { x, A, D, z, dtBias, initialStates } = inputs;
    const [Bz, L, H, P] = x.shape;
    const [, , G, N] = inputs.B.shape;
    const Q = at.chunkSize;
    const nc = Math.ceil(L / Q);
    const Lp = nc * Q;
    let dt = inputs.dt;
    if (dtBias != null) dt = tf.add(dt, dtBias);
    if (at.dtSoftplus) dt = tf.softplus(dt);
    if (at.dtClamp) {
      dt = tf.maximum(dt, at.dtMin);
      if (Number.isFinite(at.dtMax)) dt = tf.minimum(dt, at.dtMax);
    }
    // expand groups to heads: head h reads group floor(h / (H / G))
    const toHeads = (t: tf.Tensor) =>
      G === H ? t : tf.reshape(tf.mul(tf.reshape(t, [Bz * L, G, 1, N]), tf.ones([1, 1, H / G, 1])), [Bz, L, H, N]);
    const padL = (t: tf.Tensor) =>
      Lp === L ? t : tf.pad(t, [[0, 0], [0, Lp - L], ...t.shape.slice(2).map((): [number, number] => [0, 0])]);
    const Xd = padL(tf.mul(x, tf.expandDims(dt, -1))); // [B, Lp, H, P]
    const R = Bz * H * nc;
    const toChunks = (t: tf.Tensor, d: number) => tf.reshape(tf.transpose(tf.reshape(t, [Bz, nc, Q, H, d]), [0, 3, 1, 2, 4]), [R, Q, d]); // [B·H·c, Q, d]
    const Xc = toChunks(Xd, P);
    const Bc = toChunks(padL(toHeads(inputs.B)), N);
    const Cc = toChunks(padL(toHeads(inputs.C)), N);
    const a = tf.reshape(tf.transpose(tf.reshape(padL(tf.mul(dt, A)), [Bz, nc, Q, H]), [0, 3, 1, 2]), [R, Q]); // [B·H·c, Q]
    const upper = tf.cast(tf.transpose(lowerMask(Q, false)), 'float32'); // [k, i] = 1 for k <= i
    const cs = tf.matMul(a, upper); // inclusive cumsum within chunks
    // 1. intra-chunk: (C Bᵀ ∘ exp(segsum)) X
    const yDiag = tf.matMul(tf.mul(tf.matMul(Cc, Bc, false, true), expSegsum(a)), Xc); // [R, Q, P]
    // 2. state of each chunk: Σ_j exp(cs_last - cs_j) X_j B_jᵀ
    const csLast = tf.slice(cs, [0, Q - 1], [R, 1]); // [R, 1]
    // Σ_{k>j} a_k summed directly, not cs_last - cs_j: under strong decay the gradient of that
    // difference cancels two O(1) terms at j = last and leaves float32 noise in dA
    const decayStates = tf.exp(tf.matMul(a, tf.cast(lowerMask(Q, true), 'float32'))); // [R, Q]
    const states = tf.matMul(tf.mul(Xc, tf.expandDims(decayStates, -1)), Bc, true, false); // [R, P, N]
    // 3. state passing across chunks (the same stable segsum over chunk totals)
    const init = initialStates != null ? tf.reshape(initialStates, [Bz * H, 1, P * N]) : tf.zeros([Bz * H, 1, P * N]);
    const allStates = tf.concat([init, tf.reshape(states, [Bz * H, nc, P * N])], 1); // [B·H, c+1, P·N]
    const chunkA = tf.concat([tf.zeros([Bz * H, 1]), tf.reshape(csLast, [Bz * H, nc])], 1); // [B·H, c+1]
    const newStates = tf.matMul(expSegsum(chunkA), allStates); // [B·H, c+1, P·N]
    const prev = tf.reshape(tf.slice(newStates, [0, 0, 0], [Bz * H, nc, P * N]), [R, P, N]);
    const finalStates = tf.reshape(tf.slice(newStates, [0, nc, 0], [Bz * H, 1, P * N]), [Bz, H, P, N]);
    // 4. state -> output: exp(cs_i) C_i · prev state
    const yOff = tf.mul(tf.matMul(Cc, prev, false, true), tf.expandDims(tf.exp(cs), -1)); // [R, Q, P]
    let y = tf.reshape(tf.transpose(tf.reshape(tf.add(yDiag, yOff), [Bz, H, nc, Q, P]), [0, 2, 3, 1, 4]), [Bz, Lp, H, P]);
    if (Lp !== L) y = tf.slice(y, [0, 0, 0, 0], [Bz, L, H, P]);
    if (D != null) y = tf.add(y, tf.mul(x, D.shape.length === 1 ? tf.reshape(D, [H, 1]) : D));
    if (z != null) y = tf.mul(y, tf.mul(z, tf.sigmoid(z)));
    return { y, finalStates };
  });
  if (options.returnFinalStates) return out;
  out.finalStates.dispose();
  return { y: out.y };
}
