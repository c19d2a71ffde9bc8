import type { Rng } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { Linear, makeVariable, type Params, prefixed } from './nn.js';
import { adaNorm } from './ops/ada-norm.js';

/**
 * PixArt's `T2IFinalLayer`: shift, scale = scale_shift_table `[2, D]` + t (the timestep embedding, not
 * t0); LayerNorm (no affine, eps 1e-6) → modulate → `linear` (D → p·p·Cout) → unpatchify. The linear's
 * outputs are ordered (p_row, p_col, c) as in PixArt's `unpatchify`. Both the linear and the table start
 * at zero, so a fresh model outputs zeros.
 */
export class FinalLayer {
  readonly linear: Linear;
  readonly scaleShiftTable: tf.Variable;

  constructor(
    readonly hiddenSize: number,
    readonly patchSize: number,
    readonly outChannels: number,
    rng: Rng,
  ) {
    this.linear = new Linear(hiddenSize, patchSize * patchSize * outChannels, 'zeros', rng);
    this.scaleShiftTable = makeVariable(new Float32Array(2 * hiddenSize), [2, hiddenSize]);
  }

  /**
   * @param x `[N, T, D]`
   * @param t `[N, D]` timestep embedding
   * @param grid [rows, cols] with rows·cols = T
   * @returns `[N, Cout, rows·p, cols·p]`
   */
  apply(x: tf.Tensor, t: tf.Tensor, grid: readonly [number, number]): tf.Tensor {
    const [N, , D] = x.shape;
    const [gh, gw] = grid;
    const p = this.patchSize;
    const c = this.outChannels;
    const ada = tf.add(this.scaleShiftTable, tf.reshape(t, [N, 1, D])); // [N, 2, D]: shift, scale
    const o = this.linear.apply(adaNorm(x, ada, 0, 1)); // [N, T, p·p·Cout]
    const img = tf.transpose(tf.reshape(o, [N, gh, gw, p, p, c]), [0, 5, 1, 3, 2, 4]); // [N, Cout, gh, p, gw, p]
    return tf.reshape(img, [N, c, gh * p, gw * p]); // [N, Cout, H, W]
  }

  weights(): Params {
    return { ...prefixed('linear.', this.linear.weights()), scale_shift_table: this.scaleShiftTable };
  }
}
