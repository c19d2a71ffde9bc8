/**
 * Exponential moving average of weights: shadow ← d·shadow + (1 − d)·param after each optimiser step.
 *
 * The decay warms up as d_t = min(decay, (1 + t) / (10 + t)) (t = optimiser steps taken so far), so a
 * short run's average is not dominated by the random initialisation; with the paper's 0.9999 the
 * warm-up matters for the first ~10⁵ steps, with the tiny preset's 0.99 for ~900. The rule is the one of
 * TensorFlow's `ExponentialMovingAverage(num_updates=...)`; the paper states only the decay.
 */
import { check, fmtShape } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';

export class Ema {
  readonly decay: number;
  private readonly params: Record<string, tf.Variable>;
  private readonly avg: Record<string, tf.Variable> = {};

  /** @param params the variables to average (the shadow starts as a copy of them) */
  constructor(params: Record<string, tf.Variable>, decay: number) {
    check(Number.isFinite(decay) && decay >= 0 && decay < 1, () => `ema decay must be in [0, 1), got ${String(decay)}.`);
    this.decay = decay;
    this.params = { ...params };
    for (const [name, p] of Object.entries(params)) this.avg[name] = tf.tidy(() => tf.variable(tf.clone(p), false));
  }

  /** The decay used after `t` optimiser steps. */
  decayAt(t: number): number {
    return Math.min(this.decay, (1 + t) / (10 + t));
  }

  /** Folds the current weights in; `t` = optimiser steps taken so far (≥ 1 after the first step). */
  update(t: number): void {
    const d = this.decayAt(t);
    tf.tidy(() => {
      for (const [name, p] of Object.entries(this.params)) {
        this.avg[name].assign(tf.add(tf.mul(this.avg[name], d), tf.mul(p, 1 - d)));
      }
    });
  }

  /** The averaged weights by name (live variables: read, do not dispose). */
  weights(): Record<string, tf.Variable> {
    return { ...this.avg };
  }

  /** Restores the averages (copied; every name and shape checked). */
  load(tensors: Record<string, tf.Tensor>): void {
    for (const [name, a] of Object.entries(this.avg)) {
      const t = tensors[name];
      check(t != null, () => `the checkpoint has no EMA weight for '${name}'.`);
      check(
        t.shape.length === a.shape.length && t.shape.every((d, i) => d === a.shape[i]),
        () => `the checkpoint's EMA weight '${name}' has shape ${fmtShape(t.shape)}, not ${fmtShape(a.shape)}.`,
      );
    }
    for (const [name, a] of Object.entries(this.avg)) a.assign(tensors[name]);
  }

  dispose(): void {
    for (const a of Object.values(this.avg)) a.dispose();
  }
}
