/**
 * AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"), written out as PyTorch's
 * `torch.optim.AdamW` computes it, over named tf.Variables, with its whole state (step count, first and
 * second moments) exposed by name so a checkpoint can store it and a resumed run continue bit-exactly:
 *
 *   m ← β1 m + (1 − β1) g ;  v ← β2 v + (1 − β2) g²
 *   p ← p (1 − lr·wd) − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 *
 * The learning rate is passed to every `step` (the schedule lives outside, in `learningRate`).
 */
import { assertInt, check, fmtShape } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { sumAll } from '../losses/losses.js';

export interface AdamWConfig {
  /** β1 (default 0.9). */
  readonly beta1?: number;
  /** β2 (default 0.999). */
  readonly beta2?: number;
  /** ε (default 1e-8). */
  readonly eps?: number;
  /** Decoupled weight decay (default 0.01). */
  readonly weightDecay?: number;
  /**
   * Which weights decay. Default: matrices only (rank ≥ 2) — biases, norms, scale/shift tables and the
   * Mamba A_log / D / dt_bias vectors do not (GPT-2/nanoGPT's rule).
   */
  readonly decays?: (name: string, shape: readonly number[]) => boolean;
}

export type ResolvedAdamWConfig = Required<Omit<AdamWConfig, 'decays'>>;

const defaultDecays = (_name: string, shape: readonly number[]) => shape.length >= 2;

/** The serialisable state: the step count and the moments by parameter name (the live variables). */
export interface AdamWState {
  readonly t: number;
  readonly m: Record<string, tf.Variable>;
  readonly v: Record<string, tf.Variable>;
}

export class AdamW {
  readonly config: ResolvedAdamWConfig;
  private readonly params: Record<string, tf.Variable>;
  private readonly decays: Set<string>;
  private readonly m: Record<string, tf.Variable> = {};
  private readonly v: Record<string, tf.Variable> = {};
  private tCount = 0;

  /** @param params the trainable variables by name (updated in place by `step`) */
  constructor(params: Record<string, tf.Variable>, config: AdamWConfig = {}) {
    check(
      params != null && typeof params === 'object' && Object.keys(params).length > 0,
      'AdamW needs at least one named variable to train.',
    );
    const c = {
      beta1: config.beta1 ?? 0.9,
      beta2: config.beta2 ?? 0.999,
      eps: config.eps ?? 1e-8,
      weightDecay: config.weightDecay ?? 0.01,
    };
    for (const k of ['beta1', 'beta2'] as const) check(c[k] >= 0 && c[k] < 1, () => `${k} must be in [0, 1), got ${c[k]}.`);
    check(c.eps > 0, () => `eps must be positive, got ${c.eps}.`);
    check(Number.isFinite(c.weightDecay) && c.weightDecay >= 0, () => `weightDecay must be a finite number >= 0, got ${c.weightDecay}.`);
    this.config = Object.freeze(c);
    this.params = { ...params };
    const decays = config.decays ?? defaultDecays;
    this.decays = new Set(
      Object.entries(params)
        .filter(([n, p]) => decays(n, p.shape))
        .map(([n]) => n),
    );
    for (const [name, p] of Object.entries(params)) {
      check(p.dtype === 'float32', () => `AdamW trains float32 variables; '${name}' is ${p.dtype}.`);
      this.m[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
      this.v[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
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

  /**
   * One update with gradients by parameter name (the same names as the params; a missing gradient
   * leaves that parameter and its moments untouched this step). Does not dispose `grads`.
   */
  step(grads: Record<string, tf.Tensor>, lr: number): void {
    check(Number.isFinite(lr) && lr >= 0, () => `lr must be a finite number >= 0, got ${String(lr)}.`);
    for (const name of Object.keys(grads)) check(name in this.params, () => `AdamW got a gradient for '${name}', which it does not train.`);
    this.tCount += 1;
    const { beta1, beta2, eps, weightDecay } = this.config;
    const bc1 = 1 - beta1 ** this.tCount;
    const bc2 = 1 - beta2 ** this.tCount;
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    for (const [name, p] of Object.entries(this.params)) {
      const g = grads[name];
      if (g == null) continue;
      check(
        g.shape.length === p.shape.length && g.shape.every((d, i) => d === p.shape[i]),
        () => `the gradient of '${name}' has shape ${fmtShape(g.shape)} but the variable is ${fmtShape(p.shape)}.`,
      );
      tf.tidy(() => {
        const m = tf.add(tf.mul(this.m[name], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[name], beta2), tf.mul(tf.square(g), 1 - beta2));
        const denom = tf.add(tf.div(tf.sqrt(v), sqrtBc2), eps);
        const decayed = this.decays.has(name) && weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)));
        this.m[name].assign(m);
        this.v[name].assign(v);
      });
    }
  }

  /** The state by name (the live variables: read, do not dispose). */
  state(): AdamWState {
    return { t: this.tCount, m: { ...this.m }, v: { ...this.v } };
  }

  /** Restores a saved state: step count and every moment (copied; shapes checked). */
  load(state: { t: number; m: Record<string, tf.Tensor>; v: Record<string, tf.Tensor> }): void {
    assertInt('optimizer step', state.t, 0);
    for (const name of Object.keys(this.params)) {
      for (const [kind, src, dst] of [
        ['m', state.m, this.m],
        ['v', state.v, this.v],
      ] as const) {
        const t = src[name];
        check(t != null, () => `the checkpoint has no optimizer ${kind} for '${name}'; it was written for other trainable weights.`);
        check(
          t.shape.length === dst[name].shape.length && t.shape.every((d, i) => d === dst[name].shape[i]),
          () => `the checkpoint's optimizer ${kind} for '${name}' has shape ${fmtShape(t.shape)}, not ${fmtShape(dst[name].shape)}.`,
        );
      }
    }
    for (const name of Object.keys(this.params)) {
      this.m[name].assign(state.m[name]);
      this.v[name].assign(state.v[name]);
    }
    this.tCount = state.t;
  }

  /** Frees the moments (not the parameters). */
  dispose(): void {
    for (const x of [...Object.values(this.m), ...Object.values(this.v)]) x.dispose();
  }
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (PyTorch's `clip_grad_norm_`:
 * coef = min(1, maxNorm / (norm + 1e-6))). Returns new tensors and the norm before clipping; the
 * scale stays on the device (no read-back). `maxNorm` of Infinity (or ≤ 0) only measures the norm.
 */
export function clipByGlobalNorm(grads: Record<string, tf.Tensor>, maxNorm: number): { grads: Record<string, tf.Tensor>; norm: tf.Scalar } {
  const names = Object.keys(grads);
  check(names.length > 0, 'clipByGlobalNorm needs at least one gradient.');
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
