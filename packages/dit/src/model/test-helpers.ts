/** Shared by this folder's tests (not exported from the package). */

import { Rng } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import type { DiT } from './dit.js';

/** Adds N(0, std²) noise to every weight, so zero-initialised paths (gates, final layer) become live. */
export function perturb(model: DiT, seed: number, std = 0.05): void {
  const rng = new Rng(seed);
  for (const v of Object.values(model.weights())) {
    const next = tf.tidy(() => tf.add(v, tf.mul(rng.randn(v.shape), std)));
    v.assign(next);
    next.dispose();
  }
}

/** Random model inputs: x `[N, C, H, W]`, t `[N]`, y `[N, Lc, Dc]`, yMask `[N, Lc]` (the last tokens of row 1 padded). */
export function randomInputs(model: DiT, N: number, H: number, W: number, seed: number, Lc = model.config.captionLength ?? 6) {
  const rng = new Rng(seed);
  const c = model.config;
  const x = rng.randn([N, c.inChannels, H, W]);
  const t = tf.tensor1d(
    Array.from({ length: N }, () => rng.int(1000)),
    'float32',
  );
  const y = rng.randn([N, Lc, c.captionChannels]);
  const maskValues = new Uint8Array(N * Lc).fill(1);
  if (N > 1) for (let j = Math.ceil(Lc / 2); j < Lc; j++) maskValues[Lc + j] = 0;
  const yMask = tf.tensor2d(maskValues, [N, Lc], 'bool');
  return { x, t, y, yMask, dispose: () => tf.dispose([x, t, y, yMask]) };
}

/** Flat values of a tensor. */
export async function values(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}
