/**
 * AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"), written out as PyTorch's
 * `torch.optim.AdamW` computes it, over named tf.Variables, with its whole state (step count, first and
 * second moments) exposed by name so a checkpoint can store it and a resumed run continue bit-exactly:
 *
 *   m ← β1 m + (1 − β1) g ;  v ← β2 v + (1 − β2) g²
 *   p ← p (1 − lr·wd) − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 *
 * The learning rate is passed to every `step` (the schedule lives outside, in `learningRate`).
 *
 * The moments live in one flat vector over all weights (`adamw-flat.ts`: a few dozen tfjs ops per step
 * instead of ~20 per weight); the state is stored and loaded per weight. The tests hold it to a
 * per-weight reference (`reference.ts`).
 */
import { check } from '@t2md/core';
import type * as tf from '@tensorflow/tfjs-core';
import type { AdamWConfig, ResolvedAdamWConfig } from './adamw-config.js';
import { AdamWFlat, clipByGlobalNormFlat } from './adamw-flat.js';

export type { AdamWConfig, ResolvedAdamWConfig } from './adamw-config.js';

/** The serialisable state: the step count and the moments by parameter name. */
export interface AdamWState {
  readonly t: number;
  readonly m: Record<string, tf.Variable>;
  readonly v: Record<string, tf.Variable>;
}

export class AdamW {
  private readonly inner: AdamWFlat;

  /** @param params the trainable variables by name (updated in place by `step`) */
  constructor(params: Record<string, tf.Variable>, config: AdamWConfig = {}) {
    this.inner = new AdamWFlat(params, config);
  }

  get config(): ResolvedAdamWConfig {
    return this.inner.config;
  }

  /** Optimiser steps taken so far (PyTorch's `state['step']`). */
  get t(): number {
    return this.inner.t;
  }

  /** Names of the variables that take weight decay. */
  get decayed(): string[] {
    return [...this.inner.decays];
  }

  /**
   * One update with gradients by parameter name (the same names as the params; a missing gradient
   * leaves that parameter and its moments untouched this step). Does not dispose `grads`.
   */
  step(grads: Record<string, tf.Tensor>, lr: number): void {
    this.inner.step(grads, lr);
  }

  /**
   * `clipByGlobalNorm(grads, maxNorm)` then `step(clipped, lr)` in one pass over the flat vector (no
   * per-weight clipped copies); the same numbers, bit for bit. Returns the norm before clipping (the
   * caller disposes it). Does not dispose `grads`.
   */
  clipAndStep(grads: Record<string, tf.Tensor>, lr: number, maxNorm: number): tf.Scalar {
    check(Object.keys(grads).length > 0, 'clipByGlobalNorm needs at least one gradient.');
    return this.inner.clipAndStep(grads, lr, maxNorm);
  }

  /**
   * The state by name: live variables, read, do not dispose. They are per-weight copies of the flat
   * moments that this call brings up to date (a later step shows in them only at the next `state()`).
   */
  state(): AdamWState {
    return this.inner.state();
  }

  /** Restores a saved state: step count and every moment (copied; names and shapes checked). */
  load(state: { t: number; m: Record<string, tf.Tensor>; v: Record<string, tf.Tensor> }): void {
    this.inner.load(state);
  }

  /** Frees the moments (not the parameters). */
  dispose(): void {
    this.inner.dispose();
  }
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (PyTorch's `clip_grad_norm_`:
 * coef = min(1, maxNorm / (norm + 1e-6))). Returns new tensors and the norm before clipping; the
 * scale stays on the device (no read-back). `maxNorm` of Infinity (or ≤ 0) only measures the norm.
 */
export function clipByGlobalNorm(grads: Record<string, tf.Tensor>, maxNorm: number): { grads: Record<string, tf.Tensor>; norm: tf.Scalar } {
  check(Object.keys(grads).length > 0, 'clipByGlobalNorm needs at least one gradient.');
  return clipByGlobalNormFlat(grads, maxNorm);
}
