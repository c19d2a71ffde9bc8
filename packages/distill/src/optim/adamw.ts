/**
 * AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"), written out as PyTorch's
 * `torch.optim.AdamW` computes it, over named tf.Variables, with its whole state (step count, first and
 * second moments) exposed by name so a checkpoint can store it and a resumed run continue bit-exactly:
 *
 *   m ← β1 m + (1 − β1) g ;  v ← β2 v + (1 − β2) g²
 *   p ← p (1 − lr·wd) − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 *
 * The learning rate is passed to every `step` (the schedule lives outside, in `learningRate`). A weight
 * with a multiplier s (`lrScale`) steps at lr·s in both terms: lr·s·wd decays it and lr·s / (1 − β1^t)
 * scales its update (PyTorch's per-parameter-group `lr`).
 *
 * The moments live in one flat vector over all trained weights (`flat.ts`): per step one concat of the
 * gradients, ~25 ops on `[P]`, and one split back into the variables, instead of ~20 ops per weight
 * (the shapes teacher: ~5,000 optimiser ops per step became a few dozen plus the 2 × 163 free reshapes
 * and 163 slices of the split). The state is stored and loaded per weight. The ops and their order per
 * element are those of the per-weight reference the tests hold it to (`reference.ts`, test-only), so
 * with the same gradients the weights and moments are bit-identical to it; clipped gradients differ by
 * float rounding only (the norm sums the squares in one reduction instead of per weight).
 */
import { check } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import {
  type AdamWConfig,
  checkOptimizerState,
  checkStep,
  decayedNames,
  lrScales,
  type ResolvedAdamWConfig,
  resolveAdamWConfig,
} from './adamw-config.js';
import { assignFromFlat, FlatLayout, FlatViews, flatVariables } from './flat.js';

export type { AdamWConfig, ResolvedAdamWConfig } from './adamw-config.js';

/** The serialisable state: the step count and the moments by parameter name. */
export interface AdamWState {
  readonly t: number;
  readonly m: Record<string, tf.Variable>;
  readonly v: Record<string, tf.Variable>;
}

/** What one step computes: moments and weights `[P]`, and the norm before clipping when asked. */
interface Step {
  m: tf.Tensor1D;
  v: tf.Tensor1D;
  next: tf.Tensor1D;
  norm: tf.Scalar | undefined;
  [k: string]: tf.Tensor | undefined;
}

export class AdamW {
  readonly config: ResolvedAdamWConfig;
  private readonly decays: Set<string>;
  /** The multipliers ≠ 1 by name; null when every weight steps at lr. */
  private readonly scales: Map<string, number> | null;
  private readonly params: Record<string, tf.Variable>;
  private readonly layout: FlatLayout;
  private readonly vars: tf.Variable[];
  /** `[P]` first and second moments. */
  private m: tf.Tensor1D;
  private v: tf.Tensor1D;
  /** `[P]` the weights as last written into the variables (kept so the next step needs no concat). */
  private w: tf.Tensor1D | null;
  /** `[P]` 1 where the weight decays, and 1 − that; null when every weight or none decays. */
  private decayMask: tf.Tensor1D | null = null;
  private keepMask: tf.Tensor1D | null = null;
  /**
   * `[P]` with `lrScale`: s per element (the update's rate), and s where the weight decays, 0
   * elsewhere (the decay's rate, in place of the masks). Null without it: the plain path is untouched.
   */
  private stepScale: tf.Tensor1D | null = null;
  private decayScale: tf.Tensor1D | null = null;
  /** Per-weight copies of m and v for `state()` (checkpoints), refreshed when read. */
  private readonly views: { m: FlatViews; v: FlatViews };
  private tCount = 0;

  /** @param params the trainable variables by name (updated in place by `step`) */
  constructor(params: Record<string, tf.Variable>, config: AdamWConfig = {}) {
    this.decays = decayedNames(params, config);
    this.scales = lrScales(params, config);
    this.config = resolveAdamWConfig(config);
    this.params = { ...params };
    this.layout = new FlatLayout(Object.fromEntries(Object.entries(params).map(([n, p]) => [n, p.shape])));
    this.vars = this.layout.names.map((n) => params[n]);
    // The weights are rewritten from one flat copy now (same values), so even the first step and
    // the EMA update after it read that copy instead of concatenating the variables, and the live
    // tensor count is the same before and after every step.
    this.w = this.layout.flatten(params);
    assignFromFlat(this.layout, this.vars, this.w);
    this.m = tf.zeros([this.layout.total]);
    this.v = tf.zeros([this.layout.total]);
    this.views = { m: new FlatViews(this.layout, this.m), v: new FlatViews(this.layout, this.v) };
    const scales = this.scales;
    if (scales != null) {
      // built once: per step the scales cost one multiply on [P] each for the update and the decay
      this.stepScale = perElement(this.layout, (n) => scales.get(n) ?? 1);
      this.decayScale = perElement(this.layout, (n) => (this.decays.has(n) ? (scales.get(n) ?? 1) : 0));
    } else if (this.decays.size > 0 && this.decays.size < this.layout.names.length) {
      this.decayMask = this.layout.mask((n) => this.decays.has(n));
      this.keepMask = this.layout.mask((n) => !this.decays.has(n));
    }
  }

  /** Optimiser steps taken so far (PyTorch's `state['step']`). */
  get t(): number {
    return this.tCount;
  }

  /** Names of the variables that take weight decay. */
  get decayed(): string[] {
    return [...this.decays];
  }

  /** The learning-rate multipliers that differ from 1, by name (`AdamWConfig.lrScale`). */
  get lrScale(): Record<string, number> {
    return Object.fromEntries(this.scales ?? []);
  }

  /**
   * One update with gradients by parameter name (the same names as the params; a missing gradient
   * leaves that parameter and its moments untouched this step). Does not dispose `grads`.
   */
  step(grads: Record<string, tf.Tensor>, lr: number): void {
    this.update(grads, lr, null);
  }

  /**
   * `clipByGlobalNorm(grads, maxNorm)` then `step(clipped, lr)` in one pass over the flat vector (no
   * per-weight clipped copies); the same numbers, bit for bit. Returns the norm before clipping (the
   * caller disposes it). Does not dispose `grads`.
   */
  clipAndStep(grads: Record<string, tf.Tensor>, lr: number, maxNorm: number): tf.Scalar {
    check(Object.keys(grads).length > 0, 'clipByGlobalNorm needs at least one gradient.');
    return this.update(grads, lr, maxNorm) as tf.Scalar;
  }

  private update(grads: Record<string, tf.Tensor>, lr: number, maxNorm: number | null): tf.Scalar | undefined {
    checkStep(this.params, grads, lr);
    this.tCount += 1;
    this.staleViews();
    const missing = this.layout.names.filter((n) => grads[n] == null);
    const { flat: w, owned } = flatVariables(this.layout, this.vars);
    let out: Step;
    try {
      out = this.compute(w, grads, missing, maxNorm, lr);
    } catch (err) {
      if (owned) w.dispose();
      throw err;
    }
    this.m.dispose();
    this.v.dispose();
    this.m = out.m;
    this.v = out.v;
    assignFromFlat(this.layout, this.vars, out.next);
    if (owned) w.dispose();
    this.w?.dispose();
    this.w = out.next;
    return out.norm;
  }

  /** The new moments, weights `[P]` and (with `maxNorm`) the norm before clipping; AdamWRef's maths. */
  private compute(w: tf.Tensor1D, grads: Record<string, tf.Tensor>, missing: string[], maxNorm: number | null, lr: number): Step {
    const { beta1, beta2, eps, weightDecay } = this.config;
    const bc1 = 1 - beta1 ** this.tCount;
    const bc2 = 1 - beta2 ** this.tCount;
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    return tf.tidy((): Step => {
      let g = this.layout.flatten(grads); // [P]
      const norm = maxNorm == null ? undefined : globalNorm(g);
      if (norm != null && maxNorm != null && maxNorm > 0 && Number.isFinite(maxNorm)) g = tf.mul(g, clipCoef(norm, maxNorm));
      let m = tf.add(tf.mul(this.m, beta1), tf.mul(g, 1 - beta1));
      let v = tf.add(tf.mul(this.v, beta2), tf.mul(tf.square(g), 1 - beta2));
      const denom = tf.add(tf.div(tf.sqrt(v), sqrtBc2), eps);
      // lr·s / (1 − β1^t) per element with `lrScale`, else the one scalar
      const rate = this.stepScale == null ? stepSize : tf.mul(this.stepScale, stepSize);
      let next = tf.sub(this.withDecay(w, lr * weightDecay), tf.mul(tf.div(m, denom), rate));
      if (missing.length > 0) {
        // A weight without a gradient keeps its value and moments this step (as `AdamWRef` skips it).
        const active = tf.cast(
          this.layout.mask((n) => grads[n] != null),
          'bool',
        );
        m = tf.where(active, m, this.m);
        v = tf.where(active, v, this.v);
        next = tf.where(active, next, w);
      }
      return { m: m as tf.Tensor1D, v: v as tf.Tensor1D, next: next as tf.Tensor1D, norm };
    });
  }

  /**
   * w·(1 − lr·wd) on the weights that decay, w elsewhere. The factor is mask·c + (1 − mask), which is
   * exactly c or exactly 1 per element, so this matches `AdamWRef`'s per-weight scalar multiply bit for bit.
   * With `lrScale`: w·(1 − lr·wd·s), where s is 0 on the weights that do not decay (a factor of exactly 1).
   */
  private withDecay(w: tf.Tensor1D, lrWd: number): tf.Tensor {
    if (!(lrWd > 0) || this.decays.size === 0) return w;
    if (this.decayScale != null) return tf.mul(w, tf.sub(1, tf.mul(this.decayScale, lrWd)));
    if (this.decayMask == null || this.keepMask == null) return tf.mul(w, 1 - lrWd);
    return tf.mul(w, tf.add(tf.mul(this.decayMask, 1 - lrWd), this.keepMask));
  }

  /**
   * The state by name: live variables, read, do not dispose. They are per-weight copies of the flat
   * moments that this call brings up to date (a later step shows in them only at the next `state()`).
   */
  state(): AdamWState {
    return { t: this.tCount, m: this.views.m.read(this.m), v: this.views.v.read(this.v) };
  }

  private staleViews(): void {
    this.views.m.stale();
    this.views.v.stale();
  }

  /** Restores a saved state: step count and every moment (copied; names and shapes checked). */
  load(state: { t: number; m: Record<string, tf.Tensor>; v: Record<string, tf.Tensor> }): void {
    checkOptimizerState(this.params, state);
    this.staleViews();
    const m = this.layout.flatten(state.m);
    const v = this.layout.flatten(state.v);
    this.m.dispose();
    this.v.dispose();
    this.m = m;
    this.v = v;
    this.tCount = state.t;
  }

  /** Frees the moments (not the parameters). */
  dispose(): void {
    this.views.m.dispose();
    this.views.v.dispose();
    tf.dispose([
      this.m,
      this.v,
      ...(this.w ? [this.w] : []),
      ...(this.decayMask ? [this.decayMask] : []),
      ...(this.keepMask ? [this.keepMask] : []),
      ...(this.stepScale ? [this.stepScale] : []),
      ...(this.decayScale ? [this.decayScale] : []),
    ]);
    this.w = null;
  }
}

/** `[P]` constant: `value(name)` over each tensor of the layout. */
function perElement(layout: FlatLayout, value: (name: string) => number): tf.Tensor1D {
  const out = new Float32Array(layout.total);
  for (const [i, n] of layout.names.entries()) out.fill(value(n), layout.offsets[i], layout.offsets[i] + layout.sizes[i]);
  return tf.tensor1d(out);
}

/** `[]` ‖g‖₂ of a flat `[P]` gradient. */
function globalNorm(g: tf.Tensor): tf.Scalar {
  return tf.sqrt(tf.sum(tf.square(g))) as tf.Scalar;
}

/** `[]` min(1, maxNorm / (norm + 1e-6)): PyTorch's `clip_grad_norm_` factor. */
function clipCoef(norm: tf.Scalar, maxNorm: number): tf.Scalar {
  return tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1) as tf.Scalar;
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (PyTorch's `clip_grad_norm_`:
 * coef = min(1, maxNorm / (norm + 1e-6))). Returns new tensors and the norm before clipping; the
 * scale stays on the device (no read-back). `maxNorm` of Infinity (or ≤ 0) only measures the norm.
 * The norm comes from one concat of the gradients, as in `clipAndStep`.
 */
export function clipByGlobalNorm(grads: Record<string, tf.Tensor>, maxNorm: number): { grads: Record<string, tf.Tensor>; norm: tf.Scalar } {
  check(Object.keys(grads).length > 0, 'clipByGlobalNorm needs at least one gradient.');
  const names = Object.keys(grads);
  return tf.tidy(() => {
    const layout = new FlatLayout(Object.fromEntries(names.map((n) => [n, grads[n].shape])));
    const norm = globalNorm(layout.flatten(grads));
    const out: Record<string, tf.Tensor> = {};
    if (!(maxNorm > 0 && Number.isFinite(maxNorm))) {
      for (const n of names) out[n] = tf.clone(grads[n]);
      return { grads: out, norm };
    }
    // Per-weight multiplies rather than a split of the clipped flat vector: the same number of ops,
    // and each result is the very g·coef that `clipAndStep` computes on the flat vector.
    const coef = clipCoef(norm, maxNorm);
    for (const n of names) out[n] = tf.mul(grads[n], coef);
    return { grads: out, norm };
  });
}
