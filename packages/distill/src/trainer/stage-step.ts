/**
 * One training step's maths for each stage: which weights train, the forward process q(x_t | x_0), the
 * frozen teacher's pass (constants, outside the gradient tape) and the loss (inside it).
 *
 * Names: every weight is addressed as `model.<PixArt name>` (the DiT being trained) or
 * `text_encoder.<name>`, the namespace of checkpoints and of the optimiser state.
 */
import { gaussianNoise, type Rng } from '@t2md/core';
import { createDiT, type DiT, type DiTConfig, loadWeightsInto, type MixerTap, MODEL_PREFIX, type PosEmbedKind } from '@t2md/dit';
import * as tf from '@tensorflow/tfjs-core';
import {
  denoiseLoss,
  forcingLoss,
  highNoiseWeights,
  minSnrWeights,
  mixerLoss,
  pseudoLoss,
  type TrainPrediction,
  totalLoss,
  weightedDenoiseLoss,
} from '../losses/losses.js';
import type { StageConfig, StageName } from './config.js';
import { guidanceLoss, pairRows, repeatFirstHalf } from './guidance.js';
import type { DataBatch, TextEncoderLike } from './types.js';

/** The models of a stage: `model` trains (the teacher in stage `teacher`, the student otherwise). */
export interface StageModels {
  readonly model: DiT;
  readonly encoder: TextEncoderLike;
  /** The frozen teacher (forcing, distill, and adapt/finetune when a λ is non-zero). */
  readonly teacher?: DiT;
}

/** Every weight a checkpoint stores, by namespaced name. */
export function savedWeights(m: StageModels): Record<string, tf.Variable> {
  return { ...prefixed(MODEL_PREFIX, m.model.weights()), ...m.encoder.weights() };
}

/** The weights a stage trains, by namespaced name. */
export function trainableWeights(stage: StageName, cfg: StageConfig, m: StageModels): Record<string, tf.Variable> {
  const w = m.model.trainableWeights();
  // 'mamba': the Mamba token mixers (`blocks.N.mixer.*`), what teacher forcing trains
  if (cfg.trainable === 'mamba')
    return prefixed(
      MODEL_PREFIX,
      filter(w, (n) => m.model.isMixerWeight(n, 'mamba')),
    );
  if (cfg.trainable === 'mixers')
    return prefixed(
      MODEL_PREFIX,
      filter(w, (n) => m.model.isMixerWeight(n)),
    );
  // 'all': the whole DiT; the caption encoder trains only with the teacher (frozen afterwards, like T5).
  return { ...prefixed(MODEL_PREFIX, w), ...(stage === 'teacher' ? m.encoder.weights() : {}) };
}

/**
 * A copy of `model` with another positional embedding (the weights move over; the old model is
 * disposed): adapt and finetune switch the student to the centred (or the interpolated) one.
 */
export function withPosEmbed(model: DiT, posEmbed: PosEmbedKind, teacher: DiTConfig): DiT {
  const baseGrid = model.config.baseGrid ?? teacher.baseGrid;
  const next = createDiT({ ...model.config, posEmbed, ...(baseGrid ? { baseGrid } : {}) });
  try {
    loadWeightsInto(next, model.weights() as Record<string, tf.Tensor>);
  } catch (err) {
    next.dispose();
    throw err;
  }
  model.dispose();
  return next;
}

/** Whether a stage runs the teacher. */
export function needsTeacher(stage: StageName, cfg: StageConfig): boolean {
  if (stage === 'teacher') return false;
  if (stage === 'forcing') return true;
  return cfg.lambdaPseudo > 0 || cfg.lambdaMixer > 0 || (cfg.lambdaGuidance ?? 0) > 0;
}

/** A noised batch: x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε with t ~ U{0..T−1}, ε ~ N(0, I), and caption-drop flags. */
export interface NoisedBatch {
  /** `[B, C, H, W]` */
  readonly xt: tf.Tensor;
  /** int32 `[B]` */
  readonly t: tf.Tensor;
  /** `[B, C, H, W]` the ε that was added */
  readonly noise: tf.Tensor;
  /**
   * `[B, C, H, W]` what the model should output (L_mse's target): ε itself for `epsilon` (the same
   * tensor as `noise`), v = √ᾱ_t ε − √(1 − ᾱ_t) x_0 for `v`.
   */
  readonly target: tf.Tensor;
  readonly tokens: tf.Tensor;
  /** bool `[B, Lc]` */
  readonly mask: tf.Tensor;
  /** bool `[B]`: captions replaced by the null caption */
  readonly drop: tf.Tensor;
  /** token grid [H/p, W/p] */
  readonly grid: [number, number];
  /** `[B]` L_mse's weights: min-SNR-γ's times the high-noise ones of `x0WeightCap` (absent: unweighted) */
  readonly weight?: tf.Tensor;
  /** `[B]` high-noise weights of L_pseudo (`highNoiseWeights`; absent: unweighted) */
  readonly pseudoWeight?: tf.Tensor;
}

/** How `noiseBatch` noises and weights a batch (a stage's settings; see StageConfig for each weighting). */
export interface NoiseOptions {
  /** Probability of replacing a caption by the null caption. */
  readonly captionDropout: number;
  /** The DiT's patch size (the token grid is [H/p, W/p]). */
  readonly patchSize: number;
  /** Min-SNR-γ weights of L_mse (0 or absent: none). */
  readonly minSnrGamma?: number;
  /** L_mse's target, and the form of the min-SNR-γ weights (absent: epsilon). */
  readonly prediction?: TrainPrediction;
  /** High-noise weights of L_mse, times the min-SNR-γ ones (1 or absent: none). */
  readonly x0WeightCap?: number;
  /** High-noise weights of L_pseudo (1 or absent: none). */
  readonly pseudoX0Cap?: number;
  /** Guidance pairs (L_guidance, guidance.ts): rows B/2.. repeat rows 0..B/2−1 with the caption dropped. */
  readonly paired?: boolean;
}

/**
 * Draws t, the caption-drop flags and the key of ε from `rng` (in that order, in JavaScript: the same
 * numbers on every backend and after a resume; ε itself is made on the device from its key, see
 * `gaussianNoise`) and noises `batch.images`. The target follows `prediction`, and the weights of
 * L_mse (min-SNR-γ, `x0WeightCap`) and of L_pseudo (`pseudoX0Cap`) are computed from the drawn t:
 * the RNG stream depends on none of them. `paired` repeats rows after the same draws. Returns new
 * tensors (dispose with `disposeNoised`); does not dispose the batch.
 */
export function noiseBatch(batch: DataBatch, rng: Rng, alphasCumprod: Float64Array, o: NoiseOptions): NoisedBatch {
  const { captionDropout, patchSize, minSnrGamma = 0, prediction = 'epsilon', x0WeightCap = 1, pseudoX0Cap = 1, paired = false } = o;
  const [B, C, H, W] = batch.images.shape;
  const T = alphasCumprod.length;
  const ts = new Int32Array(B);
  const a = new Float32Array(B);
  const s = new Float32Array(B);
  for (let i = 0; i < B; i++) {
    ts[i] = rng.int(T);
    a[i] = Math.sqrt(alphasCumprod[ts[i]]);
    s[i] = Math.sqrt(1 - alphasCumprod[ts[i]]);
  }
  const drop = new Uint8Array(B);
  for (let i = 0; i < B; i++) drop[i] = rng.next() < captionDropout ? 1 : 0;
  // ε on the device from a key drawn here: the same stream on every backend (up to float rounding)
  // and no host work (Rng.randn took ~60 ms of host time per step at batch 512).
  // guidance pairs: after the draws of t and drop and before any tensor (ε's key is drawn either way)
  if (paired) pairRows(ts, a, s, drop);
  // L_mse's weights from the drawn (and paired) t only: the RNG stream is the same with and without them
  const weight = mseWeights(ts, alphasCumprod, minSnrGamma, prediction, x0WeightCap);
  const drawn = gaussianNoise([B, C, H, W], [rng.nextU32(), rng.nextU32()]);
  const noise = paired ? repeatFirstHalf(drawn) : drawn;
  if (noise !== drawn) drawn.dispose();
  const pair = (x: tf.Tensor) => (paired ? repeatFirstHalf(x) : x);
  const [xt, target] = tf.tidy(() => {
    const images = pair(batch.images.dtype === 'float32' ? batch.images : tf.cast(batch.images, 'float32'));
    const [at, st] = [tf.tensor4d(a, [B, 1, 1, 1]), tf.tensor4d(s, [B, 1, 1, 1])];
    const noised = tf.add(tf.mul(images, at), tf.mul(noise, st)); // x_t = α x_0 + σ ε
    return [noised, prediction === 'v' ? tf.sub(tf.mul(noise, at), tf.mul(images, st)) : noise]; // v = α ε − σ x_0
  });
  const mask = tf.tidy(() => tf.clone(pair(batch.mask.dtype === 'bool' ? batch.mask : tf.cast(batch.mask, 'bool'))));
  return {
    xt,
    t: tf.tensor1d(ts, 'int32'),
    noise,
    target,
    tokens: tf.tidy(() => tf.clone(pair(batch.tokens))),
    mask,
    drop: tf.tensor1d(drop, 'bool'),
    grid: [H / patchSize, W / patchSize],
    ...(weight != null ? { weight: tf.tensor1d(weight) } : {}),
    ...(pseudoX0Cap > 1 ? { pseudoWeight: tf.tensor1d(highNoiseWeights(ts, alphasCumprod, pseudoX0Cap)) } : {}),
  };
}

/**
 * L_mse's per-sample weights for timesteps `ts`: min-SNR-γ's (γ > 0) times `highNoiseWeights` (Γ > 1),
 * either alone, or none. Why Γ: ε's L_mse weighs the x_0 error by SNR_t (≈ 4e-5 at t = 999), where the
 * best prediction is the caption's mean image; the shapes teacher had not learnt "left of" there.
 */
function mseWeights(ts: Int32Array, ac: Float64Array, gamma: number, prediction: TrainPrediction, cap: number): Float32Array | undefined {
  const snr = gamma > 0 ? minSnrWeights(ts, ac, gamma, prediction) : undefined;
  if (cap === 1) return snr;
  const w = highNoiseWeights(ts, ac, cap);
  if (snr != null) for (let i = 0; i < w.length; i++) w[i] = snr[i]! * w[i]!;
  return w;
}

export function disposeNoised(n: NoisedBatch): void {
  const target = n.target !== n.noise ? [n.target] : [];
  const weights = [n.weight, n.pseudoWeight].filter((w): w is tf.Tensor => w != null);
  tf.dispose([n.xt, n.t, n.noise, ...target, n.tokens, n.mask, n.drop, ...weights]);
}

/** L_mse of the batch against its target (ε or v), weighted when the batch carries weights (`mseWeights`). */
function mseOf(nb: NoisedBatch, predicted: tf.Tensor): tf.Scalar {
  return nb.weight ? weightedDenoiseLoss(nb.target, predicted, nb.weight) : denoiseLoss(nb.target, predicted);
}

/** The teacher's constants for one step: its prediction (ε or v, the student's parametrisation too) and its taps. */
interface TeacherPass {
  eps?: tf.Tensor;
  taps: MixerTap[];
  y?: tf.Tensor;
}

/** The prediction part of a model output (ε or v: the first C channels; PixArt's learned sigma follows). */
function epsOf(out: tf.Tensor, channels: number): tf.Tensor {
  return out.shape[1] === channels ? out : tf.slice(out, [0, 0, 0, 0], [-1, channels, -1, -1]);
}

/**
 * The loss closure of one step (to run under `tf.variableGrads`) and a `dispose` for the constants it
 * closes over. `parts` are kept scalars the caller reads and disposes.
 */
export function stageLoss(
  stage: StageName,
  cfg: StageConfig,
  m: StageModels,
  nb: NoisedBatch,
  trained?: ReadonlySet<tf.Variable>,
): { loss: () => tf.Scalar; parts: () => Record<string, tf.Scalar>; dispose: () => void } {
  const C = m.model.config.inChannels;
  const fwdOpts = { yMask: nb.mask, dropCaption: nb.drop };
  // The trained model's forward: recomputed block by block in the backward when the stage asks, with
  // gradients only for the weights the step trains (the frozen teacher runs off the tape either way).
  // (`trained`: the step's own set, made once per stage; without it, made here)
  const trainOpts =
    cfg.recompute === true ? { ...fwdOpts, recompute: trained ?? new Set(Object.values(trainableWeights(stage, cfg, m))) } : fwdOpts;
  let kept: Record<string, tf.Scalar> = {};
  const keepPart = (name: string, v: tf.Scalar) => {
    kept[name] = tf.keep(v);
    return v;
  };

  if (stage === 'teacher') {
    return {
      loss: () => {
        const y = m.encoder.encode(nb.tokens, nb.mask);
        const out = m.model.forward(nb.xt, nb.t, y, trainOpts);
        return keepPart('mse', mseOf(nb, epsOf(out, C)));
      },
      parts: () => takeParts(),
      dispose: () => {},
    };
  }

  // Constants: caption features from the frozen encoder, and the frozen teacher's pass.
  const y = tf.tidy(() => m.encoder.encode(nb.tokens, nb.mask));
  const teacher: TeacherPass = { taps: [] };
  if (needsTeacher(stage, cfg)) {
    const tm = m.teacher;
    if (tm == null) throw new Error(`stage '${stage}' needs the teacher model.`);
    const cap = tm.forward(nb.xt, nb.t, y, { ...fwdOpts, capture: true });
    teacher.eps = tf.tidy(() => tf.clone(epsOf(cap.out, C)));
    cap.out.dispose();
    teacher.taps = cap.taps;
  }
  const disposeConstants = () => {
    tf.dispose([y, ...(teacher.eps ? [teacher.eps] : []), ...teacher.taps.flatMap((t) => [t.input, t.output])]);
  };

  if (stage === 'forcing') {
    // Teacher forcing: every converted (Mamba) layer's mixer sees the teacher's own mixer input.
    const layers = m.model.blocks
      .map((b, n) => ({ b, n }))
      .filter(({ b }) => b.kind !== 'SA')
      .map(({ b, n }) => ({
        mixer: (h: tf.Tensor) => b.mixer.apply(h, nb.grid),
        input: teacher.taps[n].input,
        target: teacher.taps[n].output,
      }));
    return {
      loss: () => keepPart('forcing', forcingLoss(layers)),
      parts: () => takeParts(),
      dispose: disposeConstants,
    };
  }

  // distill / adapt / finetune: the student's own forward pass.
  return {
    loss: () => {
      const withTaps = cfg.lambdaMixer > 0;
      let out: tf.Tensor;
      let taps: MixerTap[] = [];
      if (withTaps) {
        const cap = m.model.forward(nb.xt, nb.t, y, { ...trainOpts, capture: true });
        out = cap.out;
        taps = cap.taps;
      } else {
        out = m.model.forward(nb.xt, nb.t, y, trainOpts);
      }
      const eps = epsOf(out, C);
      const mse = keepPart('mse', mseOf(nb, eps));
      const pseudo = cfg.lambdaPseudo > 0 && teacher.eps ? keepPart('pseudo', pseudoLoss(teacher.eps, eps, nb.pseudoWeight)) : undefined;
      const lambdaGuidance = cfg.lambdaGuidance ?? 0;
      const guidance =
        lambdaGuidance > 0 && teacher.eps ? keepPart('guidance', guidanceLoss(teacher.eps, eps, nb.pseudoWeight)) : undefined;
      const mixer = withTaps
        ? keepPart(
            'mixer',
            mixerLoss(
              teacher.taps.map((t) => t.output),
              taps.map((t) => t.output),
            ),
          )
        : undefined;
      return totalLoss({ mse, pseudo, mixer, guidance }, { lambdaPseudo: cfg.lambdaPseudo, lambdaMixer: cfg.lambdaMixer, lambdaGuidance });
    },
    parts: () => takeParts(),
    dispose: disposeConstants,
  };

  function takeParts(): Record<string, tf.Scalar> {
    const out = kept;
    kept = {};
    return out;
  }
}

function prefixed(prefix: string, w: Record<string, tf.Variable>): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const [k, v] of Object.entries(w)) out[`${prefix}${k}`] = v;
  return out;
}

function filter(w: Record<string, tf.Variable>, keep: (name: string) => boolean): Record<string, tf.Variable> {
  return Object.fromEntries(Object.entries(w).filter(([n]) => keep(n)));
}
