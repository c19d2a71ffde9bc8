/**
 * Exponential moving average of weights: shadow ← d·shadow + (1 − d)·param after each optimiser step.
 *
 * The decay warms up as d_t = min(decay, (1 + t) / (10 + t)) (t = optimiser steps taken so far), so a
 * short run's average is not dominated by the random initialisation; with the paper's 0.9999 the
 * warm-up matters for the first ~10⁵ steps, with the tiny preset's 0.99 for ~900. The rule is the one of
 * TensorFlow's `ExponentialMovingAverage(num_updates=...)`; the paper states only the decay.
 *
 * The shadow is one flat vector `[P]` (3 ops per update; right after an `AdamW` step the weights are
 * read from the optimiser's flat copy, no concat); the tests hold it to a per-weight reference
 * (`reference.ts`).
 */
import { check } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { checkEmaState } from './adamw-config.js';
import { FlatLayout, FlatViews, flatVariables } from './flat.js';

export class Ema {
  readonly decay: number;
  private readonly params: Record<string, tf.Variable>;
  private readonly layout: FlatLayout;
  private readonly vars: tf.Variable[];
  /** `[P]` the averaged weights. */
  private shadow: tf.Tensor1D | null = null;
  /** Per-weight copies for `weights()`, refreshed when read. */
  private views: FlatViews | null = null;

  /** @param params the variables to average (the shadow starts as a copy of them) */
  constructor(params: Record<string, tf.Variable>, decay: number) {
    check(Number.isFinite(decay) && decay >= 0 && decay < 1, () => `ema decay must be in [0, 1), got ${String(decay)}.`);
    this.decay = decay;
    this.params = { ...params };
    this.layout = new FlatLayout(Object.fromEntries(Object.entries(params).map(([n, p]) => [n, p.shape])));
    this.vars = this.layout.names.map((n) => params[n]);
    if (this.layout.names.length > 0) {
      this.shadow = this.layout.flatten(params);
      this.views = new FlatViews(this.layout, this.shadow);
    }
  }

  /** The decay used after `t` optimiser steps. */
  decayAt(t: number): number {
    return Math.min(this.decay, (1 + t) / (10 + t));
  }

  /** Folds the current weights in; `t` = optimiser steps taken so far (≥ 1 after the first step). */
  update(t: number): void {
    const d = this.decayAt(t);
    if (this.shadow == null) return;
    this.staleViews();
    const { flat: w, owned } = flatVariables(this.layout, this.vars);
    const shadow = this.shadow;
    try {
      this.shadow = tf.tidy(() => tf.add(tf.mul(shadow, d), tf.mul(w, 1 - d)) as tf.Tensor1D);
      shadow.dispose();
    } finally {
      if (owned) w.dispose();
    }
  }

  /**
   * The averaged weights by name: live variables, read, do not dispose. They are per-weight copies of
   * the flat shadow that this call brings up to date (a later update shows only at the next call).
   */
  weights(): Record<string, tf.Variable> {
    return this.shadow != null && this.views != null ? this.views.read(this.shadow) : {};
  }

  /** Restores the averages (copied; every name and shape checked). */
  load(tensors: Record<string, tf.Tensor>): void {
    checkEmaState(this.params, tensors);
    if (this.shadow == null) return;
    this.staleViews();
    const next = this.layout.flatten(tensors);
    this.shadow.dispose();
    this.shadow = next;
  }

  dispose(): void {
    this.views?.dispose();
    this.shadow?.dispose();
    this.shadow = null;
  }

  private staleViews(): void {
    this.views?.stale();
  }
}
