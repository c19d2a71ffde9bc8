/**
 * AdamW and global-norm clipping on one flat vector of all trained weights (`flat.ts`): per step one
 * concat of the gradients, ~25 ops on `[P]`, and one split back into the variables — instead of ~20 ops
 * per weight (the shapes teacher: ~5,000 optimiser ops per step → a few dozen plus the 2 × 163 free
 * reshapes and 163 slices of the split). The ops and their order per element are those of `AdamWRef` (reference.ts),
 * so with the same gradients the weights and moments are bit-identical to it; the clipped gradients
 * differ by float rounding only (the norm sums the squares in one reduction instead of per weight).
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  type AdamWConfig,
  checkOptimizerState,
  checkStep,
  decayedNames,
  type ResolvedAdamWConfig,
  resolveAdamWConfig,
} from './adamw-config.js';
import { assignFromFlat, FlatLayout, FlatViews, flatVariables } from './flat.js';

/** What one step computes: moments and weights `[P]`, and the norm before clipping when asked. */
interface Step {
  m: tf.Tensor1D;
  v: tf.Tensor1D;
  next: tf.Tensor1D;
  norm: tf.Scalar | undefined;
  [k: string]: tf.Tensor | undefined;
}

export class AdamWFlat {
  readonly config: ResolvedAdamWConfig;
  readonly decays: Set<string>;
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
  /** Per-weight copies of m and v for `state()` (checkpoints), refreshed when read. */
  private readonly views: { m: FlatViews; v: FlatViews };
  private tCount = 0;

  constructor(params: Record<string, tf.Variable>, config: AdamWConfig = {}) {
    this.decays = decayedNames(params, config);
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
    if (this.decays.size > 0 && this.decays.size < this.layout.names.length) {
      this.decayMask = this.layout.mask((n) => this.decays.has(n));
      this.keepMask = this.layout.mask((n) => !this.decays.has(n));
    }
  }

  get t(): number {
    return this.tCount;
  }

  step(grads: Record<string, tf.Tensor>, lr: number): void {
    this.update(grads, lr, null);
  }

  /** Clips the gradients to global norm `maxNorm` on the flat vector, steps, returns the norm before clipping. */
  clipAndStep(grads: Record<string, tf.Tensor>, lr: number, maxNorm: number): tf.Scalar {
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
      let next = tf.sub(this.decayed(w, lr * weightDecay), tf.mul(tf.div(m, denom), stepSize));
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
   */
  private decayed(w: tf.Tensor1D, lrWd: number): tf.Tensor {
    if (!(lrWd > 0) || this.decays.size === 0) return w;
    if (this.decayMask == null || this.keepMask == null) return tf.mul(w, 1 - lrWd);
    return tf.mul(w, tf.add(tf.mul(this.decayMask, 1 - lrWd), this.keepMask));
  }

  /** The moments by name (live per-weight copies, refreshed here when a step changed them; read, do not dispose). */
  state(): { t: number; m: Record<string, tf.Variable>; v: Record<string, tf.Variable> } {
    return { t: this.tCount, m: this.views.m.read(this.m), v: this.views.v.read(this.v) };
  }

  private staleViews(): void {
    this.views.m.stale();
    this.views.v.stale();
  }

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

  dispose(): void {
    this.views.m.dispose();
    this.views.v.dispose();
    tf.dispose([
      this.m,
      this.v,
      ...(this.w ? [this.w] : []),
      ...(this.decayMask ? [this.decayMask] : []),
      ...(this.keepMask ? [this.keepMask] : []),
    ]);
    this.w = null;
  }
}

/** `[]` ‖g‖₂ of a flat `[P]` gradient. */
export function globalNorm(g: tf.Tensor): tf.Scalar {
  return tf.sqrt(tf.sum(tf.square(g))) as tf.Scalar;
}

/** `[]` min(1, maxNorm / (norm + 1e-6)): PyTorch's `clip_grad_norm_` factor. */
export function clipCoef(norm: tf.Scalar, maxNorm: number): tf.Scalar {
  return tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1) as tf.Scalar;
}

/** `clipByGlobalNorm` over one concat of the gradients (contract in `adamw.ts`). */
export function clipByGlobalNormFlat(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): { grads: Record<string, tf.Tensor>; norm: tf.Scalar } {
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
