import type { Tensor } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { SelectiveScanInputs, SelectiveScanResult } from './selective-scan.js';

/**
 * The selective scan made only of tfjs-core ops, one time step at a time (mamba_ssm's
 * `selective_scan_ref`): slow, plain, differentiable with `tf.grads` on every backend. Same inputs,
 * options and outputs as `selectiveScan`. Letters: B batch, D dim, G ngroups, N dstate, L seqlen.
 */
export function selectiveScanRef(
  inputs: SelectiveScanInputs,
  options: { deltaSoftplus?: boolean; returnLastState?: boolean } = {},
): SelectiveScanResult {
  const { u, delta, A, D, z, deltaBias } = inputs;
  const [batch, dim, seqlen] = u.shape as number[];
  const dstate = A.shape[1] as number;
  return tf.tidy(() => {
    const perChannel = (t: Tensor) => {
      const t4 = t.rank === 4 ? t : tf.expandDims(t, 1); // [B, G, N, L]
      const groups = t4.shape[1] as number;
      const groupOf = tf.tensor1d(
        Array.from({ length: dim }, (_, d) => Math.floor(d / (dim / groups))),
        'int32',
      );
      return tf.gather(t4, groupOf, 1); // [B, D, N, L]
    };
    let dt = deltaBias ? tf.add(delta, tf.reshape(deltaBias, [dim, 1])) : delta;
    if (options.deltaSoftplus) dt = tf.softplus(dt); // [B, D, L]
    const decay = tf.exp(tf.mul(tf.expandDims(dt, 2), tf.reshape(A, [1, dim, dstate, 1]))); // [B, D, N, L]
    const drive = tf.mul(tf.expandDims(tf.mul(dt, u), 2), perChannel(inputs.B)); // [B, D, N, L]
    // tfjs's Unpack gradient breaks on a single output (it gets a tensor, not a list): squeeze instead.
    const steps = (t: Tensor) => (seqlen === 1 ? [tf.squeeze(t, [3])] : tf.unstack(t, 3)); // L × [B, D, N]
    const decays = steps(decay);
    const drives = steps(drive);
    const Cs = steps(perChannel(inputs.C));
    let x: Tensor = tf.zeros([batch, dim, dstate]);
    const ys: Tensor[] = [];
    for (let t = 0; t < seqlen; t++) {
      x = tf.add(tf.mul(decays[t], x), drives[t]); // [B, D, N]
      ys.push(tf.sum(tf.mul(x, Cs[t]), 2)); // [B, D]
    }
    let y = tf.stack(ys, 2); // [B, D, L]
    if (D) y = tf.add(y, tf.mul(u, tf.reshape(D, [dim, 1])));
    if (z) y = tf.mul(y, tf.mul(z, tf.sigmoid(z)));
    return options.returnLastState ? { y, lastState: x } : { y };
  }) as SelectiveScanResult;
}
