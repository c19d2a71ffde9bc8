import { assertFloat, check, fmtShape } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { gatherRows, gatherRowsSplit } from './gather-rows.js';
import { invertPermutation } from './scan-order.js';

/**
 * `x[:, idx]` along axis 1: tfjs's gather on webgpu, a row copy (`T2mdGatherRows`) on cpu and wasm,
 * where tfjs's gather computes an index per element.
 */
function gatherAxis1(x: tf.Tensor, idx: Int32Array): tf.Tensor {
  if (tf.getBackend() === 'webgpu') return tf.tidy(() => tf.gather(x, tf.tensor1d(idx, 'int32'), 1));
  return gatherRows(x, idx);
}

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
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: gatherAxis1(args[0] as tf.Tensor, perm),
    gradFunc: (dy: tf.Tensor) => gatherAxis1(dy, inverse),
  }));
  return tf.tidy(() => op(x) as tf.Tensor);
}

/**
 * The index tables that run a scan order and its reverse as one batch (see `toBothDirections`).
 * For `L` tokens: `gatherIn` `[2L]` = the scan order then the reversed scan order; `gatherOut` `[2L]`
 * interleaves, for each grid token g, its position in the forward scan and (offset by L) in the
 * reversed one; `gatherOutInv` is the inverse permutation of `gatherOut`.
 */
export interface BothDirections {
  L: number;
  gatherIn: Int32Array;
  gatherOut: Int32Array;
  gatherOutInv: Int32Array;
}

/** Builds the tables of `toBothDirections` / `fromBothDirections` for the scan order `perm` (with inverse `inv`). */
export function bothDirections(perm: Int32Array, inv: Int32Array = invertPermutation(perm)): BothDirections {
  const L = perm.length;
  const gatherIn = new Int32Array(2 * L);
  const gatherOut = new Int32Array(2 * L);
  for (let i = 0; i < L; i++) {
    gatherIn[i] = perm[i];
    gatherIn[L + i] = perm[L - 1 - i]; // the reversed scan
    gatherOut[2 * i] = inv[i]; // grid token i in the forward scan
    gatherOut[2 * i + 1] = L + (L - 1 - inv[i]); // ... and in the reversed scan
  }
  return { L, gatherIn, gatherOut, gatherOutInv: invertPermutation(gatherOut) };
}

/**
 * `[B, L, D]` in grid order -> `[2B, L, D]`: entry `2b` is sequence b in scan order, entry `2b + 1` the
 * same sequence in reversed scan order. One gather (each token read twice); its gradient is one gather
 * and a sum of the two reads, again without a scatter.
 */
export function toBothDirections(x: tf.Tensor, t: BothDirections): tf.Tensor {
  assertFloat('x', x);
  check(x.rank === 3 && x.shape[1] === t.L, () => `x must have shape [B, ${t.L}, D] for this scan, got ${fmtShape(x.shape)}.`);
  const [B, L, D] = x.shape as number[];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.reshape(gatherAxis1(args[0] as tf.Tensor, t.gatherIn), [2 * B, L, D]),
    // dx[g] = dy[fwd position of g] + dy[L + reversed position of g]: the two reads are adjacent in gatherOut.
    gradFunc: (dy: tf.Tensor) => tf.sum(tf.reshape(gatherAxis1(tf.reshape(dy, [B, 2 * L, D]), t.gatherOut), [B, L, 2, D]), 2),
  }));
  return tf.tidy(() => op(x) as tf.Tensor);
}

/**
 * `toBothDirections` with the channels cut into parts of `sizes` on the way: `[B, L, D]` → one
 * `[2B, L, sizes[k]]` per part, each value copied once (a gather, then a split, copies it twice). On cpu
 * and wasm, outside a gradient tape (it has no gradient); callers elsewhere split `toBothDirections`.
 */
export function toBothDirectionsSplit(x: tf.Tensor, t: BothDirections, sizes: readonly number[]): tf.Tensor[] {
  assertFloat('x', x);
  check(x.rank === 3 && x.shape[1] === t.L, () => `x must have shape [B, ${t.L}, D] for this scan, got ${fmtShape(x.shape)}.`);
  const [B, L, D] = x.shape as number[];
  check(
    sizes.every((n) => Number.isInteger(n) && n >= 1) && sizes.reduce((a, b) => a + b, 0) === D,
    () => `sizes [${sizes}] must be positive integers summing to D = ${D}.`,
  );
  check(tf.getBackend() !== 'webgpu', 'toBothDirectionsSplit runs on cpu and wasm; on webgpu split toBothDirections.');
  return tf.tidy(() => gatherRowsSplit(x, t.gatherIn, sizes).map((part, k) => tf.reshape(part, [2 * B, L, sizes[k]!])));
}

/**
 * The inverse of `toBothDirections` for the outputs: `[2B, L, D]` (scan orders) -> `[B, L, 2D]` in grid
 * order, the forward scan's D channels then the reversed scan's, i.e. already concatenated for a merge.
 */
export function fromBothDirections(y: tf.Tensor, t: BothDirections): tf.Tensor {
  assertFloat('y', y);
  check(
    y.rank === 3 && y.shape[0] % 2 === 0 && y.shape[1] === t.L,
    () => `y must have shape [2B, ${t.L}, D] for this scan, got ${fmtShape(y.shape)}.`,
  );
  const [B2, L, D] = y.shape as number[];
  return tf.tidy(() => {
    const g = gatherTokens(tf.reshape(y, [B2 / 2, 2 * L, D]), t.gatherOut, t.gatherOutInv); // [B, 2L, D]
    return tf.reshape(g, [B2 / 2, L, 2 * D]);
  });
}
