/**
 * Test-only references of the optimiser (imported by optim.test.ts alone, never by the package): the
 * per-weight AdamW and gradient clipping (~20 small tfjs ops per weight and step, written to be read)
 * and the per-weight EMA. `AdamW` and `Ema`, which work on one flat vector, are tested against them;
 * maths and state layout in `adamw.ts` and `ema.ts`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { sumAll } from '../losses/losses.js';
import {
  type AdamWConfig,
  checkEmaState,
  checkOptimizerState,
  checkStep,
  decayedNames,
  lrScales,
  type ResolvedAdamWConfig,
  resolveAdamWConfig,
} from './adamw-config.js';

export class AdamWRef {
  readonly config: ResolvedAdamWConfig;
  readonly decays: Set<string>;
  private readonly scales: Map<string, number> | null;
  private readonly params: Record<string, tf.Variable>;
  private readonly m: Record<string, tf.Variable> = {};
  private readonly v: Record<string, tf.Variable> = {};
  private tCount = 0;

  constructor(params: Record<string, tf.Variable>, config: AdamWConfig = {}) {
    this.decays = decayedNames(params, config);
    this.scales = lrScales(params, config);
    this.config = resolveAdamWConfig(config);
    this.params = { ...params };
    for (const [name, p] of Object.entries(params)) {
      this.m[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
      this.v[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
    }
  }

  get t(): number {
    return this.tCount;
  }

  step(grads: Record<string, tf.Tensor>, lr: number): void {
    checkStep(this.params, grads, lr);
    this.tCount += 1;
    const { beta1, beta2, eps, weightDecay } = this.config;
    const bc1 = 1 - beta1 ** this.tCount;
    const bc2 = 1 - beta2 ** this.tCount;
    const sqrtBc2 = Math.sqrt(bc2);
    for (const [name, p] of Object.entries(this.params)) {
      const g = grads[name];
      if (g == null) continue;
      const lrN = lr * (this.scales?.get(name) ?? 1); // this weight's own rate (a parameter group's lr)
      const stepSize = lrN / bc1;
      tf.tidy(() => {
        const m = tf.add(tf.mul(this.m[name], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[name], beta2), tf.mul(tf.square(g), 1 - beta2));
        const denom = tf.add(tf.div(tf.sqrt(v), sqrtBc2), eps);
        const decayed = this.decays.has(name) && weightDecay > 0 ? tf.mul(p, 1 - lrN * weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)));
        this.m[name].assign(m);
        this.v[name].assign(v);
      });
    }
  }

  /** Clips (`clipByGlobalNormRef`), steps, and returns the norm before clipping. */
  clipAndStep(grads: Record<string, tf.Tensor>, lr: number, maxNorm: number): tf.Scalar {
    const clipped = clipByGlobalNormRef(grads, maxNorm);
    try {
      this.step(clipped.grads, lr);
    } catch (err) {
      clipped.norm.dispose();
      throw err;
    } finally {
      tf.dispose(Object.values(clipped.grads));
    }
    return clipped.norm;
  }

  state(): { t: number; m: Record<string, tf.Variable>; v: Record<string, tf.Variable> } {
    return { t: this.tCount, m: { ...this.m }, v: { ...this.v } };
  }

  load(state: { t: number; m: Record<string, tf.Tensor>; v: Record<string, tf.Tensor> }): void {
    checkOptimizerState(this.params, state);
    for (const name of Object.keys(this.params)) {
      this.m[name].assign(state.m[name]);
      this.v[name].assign(state.v[name]);
    }
    this.tCount = state.t;
  }

  dispose(): void {
    for (const x of [...Object.values(this.m), ...Object.values(this.v)]) x.dispose();
  }
}

/** PyTorch's `clip_grad_norm_` one weight at a time (contract in `clipByGlobalNorm`). */
export function clipByGlobalNormRef(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): { grads: Record<string, tf.Tensor>; norm: tf.Scalar } {
  const names = Object.keys(grads);
  return tf.tidy(() => {
    const norm = tf.sqrt(sumAll(names.map((n) => tf.sum(tf.square(grads[n]))))) as tf.Scalar;
    const out: Record<string, tf.Tensor> = {};
    if (!(maxNorm > 0 && Number.isFinite(maxNorm))) {
      for (const n of names) out[n] = tf.clone(grads[n]);
      return { grads: out, norm };
    }
    const coef = tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1);
    for (const n of names) out[n] = tf.mul(grads[n], coef);
    return { grads: out, norm };
  });
}

/** The per-weight EMA: 3 small ops per weight and update. */
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
