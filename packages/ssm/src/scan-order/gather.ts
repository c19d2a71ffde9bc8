import * as tf from '@tensorflow/tfjs-core';
import { assertFloat, check, fmtShape } from '@t2md/core';
import { invertPermutation } from './scan-order.js';

/**
 * Reorders the tokens (axis 1) of `x` `[B, L, ...]`: `out[:, i] = x[:, perm[i]]`. Differentiable; since
 * `perm` is a bijection its gradient is the gather by the inverse permutation, which replaces tfjs's
 * generic scatter-add gradient of `gather` (slower, and missing on the wasm backend).
 * @param perm a permutation of `0..L-1` (e.g. `scanPermutation(...).perm`)
 * @param inv its inverse when already known (saves recomputing it)
 */
export function gatherTokens(x: tf.Tensor, perm: Int32Array, inv?: Int32Array): tf.Tensor {
  assertFloat('x', x);
  check(x.rank >= 2, () => `x must have rank >= 2 [B, L, ...], got shape ${fmtShape(x.shape)}.`);
  check(
    perm.length === x.shape[1],
    () => `perm has ${perm.length} entries but x has L = ${x.shape[1]} tokens (shape ${fmtShape(x.shape)}); build it for this grid.`,
  );
  const inverse = inv ?? invertPermutation(perm);
  check(inverse.length === perm.length, () => `inv has ${inverse.length} entries, perm has ${perm.length}.`);
  const op = tf.customGrad((t: tf.Tensor) => ({
    value: tf.gather(t, tf.tensor1d(perm, 'int32'), 1),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.gather(dy as tf.Tensor, tf.tensor1d(inverse, 'int32'), 1),
  }));
  return tf.tidy(() => op(x) as tf.Tensor);
}
