/**
 * The T2MD losses (arXiv 2506.18999, sec. 3; see ../../README.md).
 *
 * Normalisation (the paper writes ||·||² without saying): every squared norm here is a MEAN over all
 * elements of the difference (batch, channels and positions alike), i.e. PyTorch's
 * `F.mse_loss(reduction='mean')`. A loss then does not grow with batch, resolution or width, so one
 * learning rate and one set of λ serve every preset. Layers are summed in `forcingLoss` (the paper's
 * Σ_n) and averaged in `mixerLoss` (the paper's 1/N Σ_n).
 *
 * Every function returns a new scalar and leaves its inputs alone (the caller disposes them).
 */
import { assertFloat, check, fmtShape } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';

/** mean((a − b)²) over every element; a and b float32 of one shape. */
export function meanSquaredError(a: tf.Tensor, b: tf.Tensor, names: [string, string] = ['a', 'b']): tf.Scalar {
  assertFloat(names[0], a);
  assertFloat(names[1], b);
  check(
    a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]),
    () => `${names[0]} and ${names[1]} must have the same shape, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}.`,
  );
  return tf.tidy(() => tf.mean(tf.squaredDifference(a, b)) as tf.Scalar);
}

/**
 * L_mse = mean((ε − ε̂)²): the plain denoising loss (also the teacher stage's whole loss). For a
 * v-predicting model pass v and v̂ (the target in the model's own parametrisation).
 * @param eps the noise that was added, `[N, C, H, W]`
 * @param epsHat the model's prediction, `[N, C, H, W]`
 */
export function denoiseLoss(eps: tf.Tensor, epsHat: tf.Tensor): tf.Scalar {
  return meanSquaredError(eps, epsHat, ['eps', 'epsHat']);
}

/**
 * What the trained model predicts: `epsilon` (the added noise ε, PixArt) or `v` = √ᾱ_t ε − √(1 − ᾱ_t) x_0
 * (Salimans & Ho 2022, sec. 4). Written as x_0 error, ε-prediction's L_mse is weighted by SNR_t, about 0
 * at high noise where the layout is decided; v-prediction's by SNR_t + 1.
 */
export const TRAIN_PREDICTIONS = ['epsilon', 'v'] as const;
export type TrainPrediction = (typeof TRAIN_PREDICTIONS)[number];

/**
 * Min-SNR-γ loss weights (Hang et al. 2023, sec. 3.4 and its v form) with SNR_t = ᾱ_t / (1 − ᾱ_t):
 *   epsilon: w_t = min(SNR_t, γ) / SNR_t
 *   v:       w_t = min(SNR_t, γ) / (SNR_t + 1)
 * Both make the x_0-space weight min(SNR_t, γ): low-noise steps (SNR > γ), whose target is nearly
 * unpredictable and whose gradients fight the rest, count less.
 * @param ts timesteps `[N]`, indices into `alphasCumprod`
 */
export function minSnrWeights(
  ts: ArrayLike<number>,
  alphasCumprod: ArrayLike<number>,
  gamma: number,
  prediction: TrainPrediction = 'epsilon',
): Float32Array {
  check(Number.isFinite(gamma) && gamma > 0, () => `gamma must be a finite number > 0, got ${String(gamma)}.`);
  const w = new Float32Array(ts.length);
  for (let i = 0; i < ts.length; i++) {
    const ab = alphasCumprod[ts[i]!]!;
    const snr = ab / (1 - ab);
    w[i] = Math.min(snr, gamma) / (prediction === 'v' ? snr + 1 : snr);
  }
  return w;
}

/**
 * L_mse with a weight per sample: mean_n(w_n · mean((ε_n − ε̂_n)²)) (min-SNR-γ).
 * @param weight `[N]`
 */
export function weightedDenoiseLoss(eps: tf.Tensor, epsHat: tf.Tensor, weight: tf.Tensor): tf.Scalar {
  assertFloat('eps', eps);
  assertFloat('epsHat', epsHat);
  check(
    eps.shape.length === epsHat.shape.length && eps.shape.every((d, i) => d === epsHat.shape[i]),
    () => `eps and epsHat must have the same shape, got ${fmtShape(eps.shape)} and ${fmtShape(epsHat.shape)}.`,
  );
  check(
    weight.rank === 1 && weight.shape[0] === eps.shape[0],
    () => `weight must be [N] = [${eps.shape[0]}], got ${fmtShape(weight.shape)}.`,
  );
  return tf.tidy(() => {
    const per = tf.mean(tf.reshape(tf.squaredDifference(eps, epsHat), [eps.shape[0]!, -1]), 1); // [N]
    return tf.mean(tf.mul(per, weight)) as tf.Scalar;
  });
}

/**
 * Weights that move an ε-space loss toward its x_0-space error at high noise: w_t = clamp(1/SNR_t, 1, Γ)
 * (x_0 = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t, so a squared ε error counts 1/SNR_t times in x_0), divided by their mean
 * over every t of the schedule. The loss does not keep its scale: the ε error is smallest at high noise,
 * so the weighted L_pseudo comes out far smaller than the plain one (1.1e-5 against 1.1e-3 for the shapes
 * student at Γ = 1000), and λ_pseudo has to rise with it to keep the term's share. Why: at t ≳ 800, where the layout is
 * decided, the ε output is almost x_t itself and the caption's part of it (cond − uncond) is ~0.1% of it;
 * a student matched in plain ε-space there gets nearly no gradient and its guidance direction stays 60–70%
 * off the teacher's (bench/recipe.md, 2026-12-07 third session). Γ = 1 gives all ones (the paper's L_pseudo).
 * @param ts timesteps `[N]`, indices into `alphasCumprod`
 */
export function highNoiseWeights(ts: ArrayLike<number>, alphasCumprod: ArrayLike<number>, cap: number): Float32Array {
  check(Number.isFinite(cap) && cap >= 1, () => `cap must be a finite number >= 1 (1 = unweighted), got ${String(cap)}.`);
  const at = (t: number) => {
    const ab = alphasCumprod[t]!;
    return Math.min(Math.max((1 - ab) / ab, 1), cap);
  };
  let mean = 0;
  for (let t = 0; t < alphasCumprod.length; t++) mean += at(t) / alphasCumprod.length;
  const w = new Float32Array(ts.length);
  for (let i = 0; i < ts.length; i++) w[i] = at(ts[i]!) / mean;
  return w;
}

/**
 * L_pseudo = mean((ε_teacher − ε_student)²): the teacher's prediction as a soft label (for a v teacher
 * and student, their v outputs: the student predicts what its teacher does). With `weight` `[N]`, each
 * sample's mean counts w_n times (`highNoiseWeights`).
 * @param epsTeacher `[N, C, H, W]` (a constant: the teacher is frozen)
 * @param epsStudent `[N, C, H, W]`
 */
export function pseudoLoss(epsTeacher: tf.Tensor, epsStudent: tf.Tensor, weight?: tf.Tensor): tf.Scalar {
  if (weight != null) return weightedDenoiseLoss(epsTeacher, epsStudent, weight);
  return meanSquaredError(epsTeacher, epsStudent, ['epsTeacher', 'epsStudent']);
}

/**
 * L_mixer = (1/N) Σ_n mean((f_teacher(n) − f_student(n))²) over the N tapped layers, where f(n) is
 * layer n's token-mixer output (`[N, T, D]` each; both lists in the same layer order).
 */
export function mixerLoss(teacher: readonly tf.Tensor[], student: readonly tf.Tensor[]): tf.Scalar {
  check(Array.isArray(teacher) && Array.isArray(student), 'mixerLoss takes two arrays of per-layer mixer outputs.');
  check(teacher.length > 0, 'mixerLoss needs at least one layer of mixer outputs.');
  check(
    teacher.length === student.length,
    () => `mixerLoss got ${teacher.length} teacher layers and ${student.length} student layers; pass one output per layer for both.`,
  );
  return tf.tidy(() => {
    const per = teacher.map((f, n) => meanSquaredError(f, student[n], [`teacher[${n}]`, `student[${n}]`]));
    return tf.div(sumAll(per), per.length) as tf.Scalar;
  });
}

/** One converted layer in teacher forcing: the student's mixer, the teacher's mixer input h_n and output SA_n(h_n). */
export interface ForcingLayer {
  /** MA_n: the student's token mixer at layer n, `[N, T, D]` → `[N, T, D]` (e.g. `h => mamba.apply(h, grid)`). */
  readonly mixer: (h: tf.Tensor) => tf.Tensor;
  /** h_n: the teacher's token-mixer input at layer n, `[N, T, D]`. */
  readonly input: tf.Tensor;
  /** SA_n(h_n): the teacher's token-mixer output at layer n, `[N, T, D]`. */
  readonly target: tf.Tensor;
}

/**
 * L_forcing = Σ_n mean((MA_n(h_n) − SA_n(h_n))²) over the converted layers (paper eq. for layer-level
 * teacher forcing). Every mixer sees the teacher's own input, so the layers train in parallel from one
 * teacher pass and errors do not compound.
 */
export function forcingLoss(layers: readonly ForcingLayer[]): tf.Scalar {
  check(Array.isArray(layers) && layers.length > 0, 'forcingLoss needs at least one converted layer {mixer, input, target}.');
  return tf.tidy(() => {
    const per = layers.map((l, n) => {
      check(typeof l?.mixer === 'function', () => `layers[${n}].mixer must be a function h => MA_n(h).`);
      return meanSquaredError(l.mixer(l.input), l.target, [`MA_${n}(h_${n})`, `layers[${n}].target`]);
    });
    return sumAll(per) as tf.Scalar;
  });
}

/** λ1 (pseudo) and λ2 (mixer) of the feature-distillation loss; the paper's 0.5 and 0.2 by default. */
export interface LossWeights {
  readonly lambdaPseudo?: number;
  readonly lambdaMixer?: number;
  /** λ of L_guidance (trainer/guidance.ts; default 0, the paper has no such term). */
  readonly lambdaGuidance?: number;
}

export const DEFAULT_LOSS_WEIGHTS: Required<LossWeights> = Object.freeze({ lambdaPseudo: 0.5, lambdaMixer: 0.2, lambdaGuidance: 0 });

/** Fills in defaults and checks that every λ is finite and ≥ 0. */
export function resolveLossWeights(w: LossWeights = {}): Required<LossWeights> {
  const out = { ...DEFAULT_LOSS_WEIGHTS, ...stripUndefined(w) };
  for (const k of ['lambdaPseudo', 'lambdaMixer', 'lambdaGuidance'] as const) {
    check(Number.isFinite(out[k]) && out[k] >= 0, () => `${k} must be a finite number >= 0, got ${String(out[k])}.`);
  }
  return out;
}

/**
 * L = L_mse + λ1 L_pseudo + λ2 L_mixer (λ1 = 0.5, λ2 = 0.2 by default), + λ_g L_guidance when asked for
 * (default 0). A missing part counts as 0 (e.g. the adaptation stages may run with the denoising term only).
 */
export function totalLoss(
  parts: { mse: tf.Scalar; pseudo?: tf.Scalar; mixer?: tf.Scalar; guidance?: tf.Scalar },
  weights: LossWeights = {},
): tf.Scalar {
  const { lambdaPseudo, lambdaMixer, lambdaGuidance } = resolveLossWeights(weights);
  check(parts?.mse != null, 'totalLoss needs parts.mse (the denoising loss).');
  for (const [k, v] of Object.entries(parts)) {
    if (v != null) check(v.rank === 0, () => `parts.${k} must be a scalar, got shape ${fmtShape(v.shape)}.`);
  }
  return tf.tidy(() => {
    let total: tf.Tensor = parts.mse;
    if (parts.pseudo != null && lambdaPseudo !== 0) total = tf.add(total, tf.mul(parts.pseudo, lambdaPseudo));
    if (parts.mixer != null && lambdaMixer !== 0) total = tf.add(total, tf.mul(parts.mixer, lambdaMixer));
    if (parts.guidance != null && lambdaGuidance !== 0) total = tf.add(total, tf.mul(parts.guidance, lambdaGuidance));
    return (total === parts.mse ? tf.clone(total) : total) as tf.Scalar;
  });
}

/**
 * Σ of same-shaped tensors as a balanced tree of pairwise adds. Not tf.addN: its WebGPU kernel binds
 * every input to one shader, which fails past the device's storage-buffer limit (8 by default), and a
 * model has dozens of layers and hundreds of gradients.
 */
export function sumAll(xs: readonly tf.Tensor[]): tf.Tensor {
  check(xs.length > 0, 'sumAll needs at least one tensor.');
  return tf.tidy(() => {
    let level = [...xs];
    if (level.length === 1) return tf.clone(level[0]);
    while (level.length > 1) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? tf.add(level[i], level[i + 1]) : level[i]);
      level = next;
    }
    return level[0];
  });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
