/**
 * The per-weight EMA (3 small ops per weight and update): the reference of the flat `Ema` and the path
 * `T2MD_OPTIM=ref` selects. Maths in `ema.ts`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkEmaState } from './adamw-config.js';

export class EmaRef {
  private readonly params: Record<string, tf.Variable>;
  private readonly avg: Record<string, tf.Variable> = {};

  constructor(params: Record<string, tf.Variable>) {
    this.params = { ...params };
    for (const [name, p] of Object.entries(params)) this.avg[name] = tf.tidy(() => tf.variable(tf.clone(p), false));
  }

  /** shadow ← d·shadow + (1 − d)·param */
  update(d: number): void {
    tf.tidy(() => {
      for (const [name, p] of Object.entries(this.params)) {
        this.avg[name].assign(tf.add(tf.mul(this.avg[name], d), tf.mul(p, 1 - d)));
      }
    });
  }

  weights(): Record<string, tf.Variable> {
    return { ...this.avg };
  }

  load(tensors: Record<string, tf.Tensor>): void {
    checkEmaState(this.avg, tensors);
    for (const [name, a] of Object.entries(this.avg)) a.assign(tensors[name]);
  }

  dispose(): void {
    for (const a of Object.values(this.avg)) a.dispose();
  }
}
