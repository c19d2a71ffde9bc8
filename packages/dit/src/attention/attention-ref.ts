import * as tf from '@tensorflow/tfjs-core';
import { type AttentionOptions, checkAttentionInputs } from './attention.js';

/**
 * The reference for `attention`, made only of tfjs-core ops: it builds the full `[B, H, Lq, Lk]`
 * score matrix, so it is O(L²) in memory — for tests and small inputs. Same semantics, including
 * zeros for a query row whose keys are all masked. Differentiable.
 */
export function attentionRef(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, options: AttentionOptions = {}): tf.Tensor {
  const { B, Lk, Dh } = checkAttentionInputs(q, k, v, options);
  const scale = options.scale ?? 1 / Math.sqrt(Dh);
  return tf.tidy(() => {
    const s = tf.mul(tf.matMul(q, k, false, true), scale); // [B, H, Lq, Lk]
    const keep = options.keyMask == null ? null : tf.reshape(tf.cast(options.keyMask, 'float32'), [B, 1, 1, Lk]);
    const sMasked = keep == null ? s : tf.where(tf.cast(keep, 'bool'), s, tf.fill(s.shape, -1e30));
    const m = tf.max(sMasked, -1, true); // [B, H, Lq, 1]
    const e0 = tf.exp(tf.sub(sMasked, m));
    const e = keep == null ? e0 : tf.mul(e0, keep);
    const l = tf.sum(e, -1, true);
    // A fully masked row has e = 0 and l = 0: divide by 1 there, so p = 0 and its gradient stays finite
    // (the test of emptiness reads only the mask, which no gradient flows through).
    const empty = keep == null ? null : tf.cast(tf.equal(tf.sum(keep, -1, true), 0), 'float32'); // [B, 1, 1, 1]
    const p = tf.div(e, empty == null ? l : tf.add(l, empty));
    return tf.matMul(p, v); // [B, H, Lq, Dh]
  });
}
