/** AdamW's hyper-parameters, validated once and shared by the flat optimiser and its per-weight reference. */
import { assertInt, check, fmtShape } from '@t2md/core';
import type * as tf from '@tensorflow/tfjs-core';

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
  /**
   * Per-weight learning-rate multipliers by parameter name (absent names: 1). The weight steps at
   * lr·s, and its decoupled decay follows that rate: p ← p (1 − lr·s·wd) − (lr·s / (1 − β1^t)) · m̂ / …
   * The trainer's `textLrScale`: a caption encoder trained from scratch beside the DiT.
   */
  readonly lrScale?: Readonly<Record<string, number>>;
}

export type ResolvedAdamWConfig = Required<Omit<AdamWConfig, 'decays' | 'lrScale'>>;

const defaultDecays = (_name: string, shape: readonly number[]) => shape.length >= 2;

/** The defaults filled in and every value checked (messages name the field). */
export function resolveAdamWConfig(config: AdamWConfig): ResolvedAdamWConfig {
  const c = {
    beta1: config.beta1 ?? 0.9,
    beta2: config.beta2 ?? 0.999,
    eps: config.eps ?? 1e-8,
    weightDecay: config.weightDecay ?? 0.01,
  };
  for (const k of ['beta1', 'beta2'] as const) check(c[k] >= 0 && c[k] < 1, () => `${k} must be in [0, 1), got ${c[k]}.`);
  check(c.eps > 0, () => `eps must be positive, got ${c.eps}.`);
  check(Number.isFinite(c.weightDecay) && c.weightDecay >= 0, () => `weightDecay must be a finite number >= 0, got ${c.weightDecay}.`);
  return Object.freeze(c);
}

/** Checks the trainable set (non-empty, float32) and returns the names that take weight decay. */
export function decayedNames(params: Record<string, tf.Variable>, config: AdamWConfig): Set<string> {
  check(
    params != null && typeof params === 'object' && Object.keys(params).length > 0,
    'AdamW needs at least one named variable to train.',
  );
  for (const [name, p] of Object.entries(params))
    check(p.dtype === 'float32', () => `AdamW trains float32 variables; '${name}' is ${p.dtype}.`);
  const decays = config.decays ?? defaultDecays;
  return new Set(
    Object.entries(params)
      .filter(([n, p]) => decays(n, p.shape))
      .map(([n]) => n),
  );
}

/**
 * The learning-rate multipliers that differ from 1, by name, checked (finite and > 0, each a weight
 * the optimiser trains); null when there are none, so the default update keeps its ops and its bits.
 */
export function lrScales(params: Record<string, tf.Variable>, config: AdamWConfig): Map<string, number> | null {
  const given = config.lrScale ?? {};
  check(given != null && typeof given === 'object', 'lrScale must be an object of multipliers by parameter name.');
  const out = new Map<string, number>();
  for (const [name, s] of Object.entries(given)) {
    check(Object.hasOwn(params, name), () => `lrScale names '${name}', which AdamW does not train; pass only trained names.`);
    // > 0: a weight that must not move is left out of the trained set, not stepped at rate 0
    check(Number.isFinite(s) && s > 0, () => `lrScale of '${name}' must be a finite number > 0, got ${String(s)}.`);
    if (s !== 1) out.set(name, s);
  }
  return out.size > 0 ? out : null;
}

/** Validates a step's gradients against the trained variables and the learning rate. */
export function checkStep(params: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number): void {
  check(Number.isFinite(lr) && lr >= 0, () => `lr must be a finite number >= 0, got ${String(lr)}.`);
  for (const [name, g] of Object.entries(grads)) {
    const p = Object.hasOwn(params, name) ? params[name] : undefined;
    check(p != null, () => `AdamW got a gradient for '${name}', which it does not train.`);
    check(
      g.shape.length === p.shape.length && g.shape.every((d, i) => d === p.shape[i]),
      () => `the gradient of '${name}' has shape ${fmtShape(g.shape)} but the variable is ${fmtShape(p.shape)}.`,
    );
  }
}

/** Throws a message naming the first name of `like` that `src` lacks or holds in another shape. */
export function checkNamedShapes(
  like: Record<string, { shape: number[] }>,
  src: Record<string, tf.Tensor>,
  missing: (name: string) => string,
  wrong: (name: string, got: string, want: string) => string,
): void {
  for (const [name, a] of Object.entries(like)) {
    const t = src[name];
    check(t != null, () => missing(name));
    check(t.shape.length === a.shape.length && t.shape.every((d, i) => d === a.shape[i]), () =>
      wrong(name, fmtShape(t.shape), fmtShape(a.shape)),
    );
  }
}

/** Checks a saved optimiser state {t, m, v} against the trained variables (the optimiser and its test reference load it). */
export function checkOptimizerState(
  params: Record<string, tf.Variable>,
  state: { t: number; m: Record<string, tf.Tensor>; v: Record<string, tf.Tensor> },
): void {
  assertInt('optimizer step', state.t, 0);
  for (const kind of ['m', 'v'] as const) {
    checkNamedShapes(
      params,
      state[kind],
      (n) => `the checkpoint has no optimizer ${kind} for '${n}'; it was written for other trainable weights.`,
      (n, got, want) => `the checkpoint's optimizer ${kind} for '${n}' has shape ${got}, not ${want}.`,
    );
  }
}

/** Checks saved EMA weights against the averaged variables (the EMA and its test reference load them). */
export function checkEmaState(like: Record<string, { shape: number[] }>, tensors: Record<string, tf.Tensor>): void {
  checkNamedShapes(
    like,
    tensors,
    (n) => `the checkpoint has no EMA weight for '${n}'.`,
    (n, got, want) => `the checkpoint's EMA weight '${n}' has shape ${got}, not ${want}.`,
  );
}
