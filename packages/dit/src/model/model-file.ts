/**
 * The file format of trained models and training checkpoints, here below the trainer so that sampling
 * (the CLI's `sample` and `eval`, the playground) reads model files without trainer code. One
 * safetensors file holds
 *
 *   model.*            the DiT's weights (PixArt names; `loadDiT(bytes, {prefix: MODEL_PREFIX})` reads them alone)
 *   text_encoder.*     the caption encoder's weights
 *   optimizer.m.NAME   AdamW first moments (checkpoints only; NAME from the two above, trained weights only)
 *   optimizer.v.NAME   AdamW second moments (checkpoints only)
 *   ema.NAME           EMA of the trained weights (checkpoints only; a model file has them folded in)
 *
 * and string metadata: `t2md.config` (the DiT config), `t2md.text_encoder` (the encoder spec),
 * `t2md.prediction` (what the DiT predicts; absent: epsilon, as every file before the key reads),
 * `t2md.preset` and `t2md.train` (written by @t2md/distill). Everything is F32, so a resumed run
 * continues from bit-identical state. No Node APIs here: bytes in, bytes out (the browser uses it too).
 */
import { check, InputError, loadSafetensors, saveSafetensors } from '@t2md/core';
import type * as tf from '@tensorflow/tfjs-core';
import { CONFIG_METADATA_KEY, loadWeightsInto } from './checkpoint.js';
import type { DiTConfig } from './config.js';
import { createDiT, type DiT } from './dit.js';

export const MODEL_PREFIX = 'model.';
export const TEXT_ENCODER_PREFIX = 'text_encoder.';
export const OPT_M = 'optimizer.m.';
export const OPT_V = 'optimizer.v.';
export const EMA = 'ema.';
export const TEXT_ENCODER_KEY = 't2md.text_encoder';
export const PRESET_KEY = 't2md.preset';
export const TRAIN_KEY = 't2md.train';
export const PREDICTION_KEY = 't2md.prediction';

/**
 * What a model's output is (@t2md/sampler's `PredictionType`, spelled out here because dit sits below
 * the sampler): `epsilon` the added noise, `v` = √ᾱ ε − √(1−ᾱ) x0 (Salimans & Ho 2022), `sample` x0.
 */
export const MODEL_PREDICTIONS = ['epsilon', 'v', 'sample'] as const;
export type ModelPrediction = (typeof MODEL_PREDICTIONS)[number];

/**
 * The prediction type a file's metadata records under `t2md.prediction`: absent is `epsilon` (every
 * file written before the key, the shipped models among them); anything else is an InputError naming
 * `where`.
 */
export function readPrediction(metadata: Record<string, string>, where: string): ModelPrediction {
  const p = metadata[PREDICTION_KEY];
  if (p == null) return 'epsilon';
  check(
    (MODEL_PREDICTIONS as readonly string[]).includes(p),
    () =>
      `${where}'s '${PREDICTION_KEY}' metadata is ${JSON.stringify(p)}, not one of ${MODEL_PREDICTIONS.join(', ')}; the file is damaged or from a newer t2md, write it again.`,
  );
  return p as ModelPrediction;
}

/** The caption encoder's settings (shapes's `CaptionEncoderConfig`). */
export interface TextEncoderSpec {
  readonly vocabSize: number;
  readonly maxLength: number;
  readonly dim: number;
  readonly layers: number;
  readonly heads: number;
  readonly mlpRatio: number;
  readonly seed: number;
}

/** A caption encoder: weights by state-dict name (`text_encoder.*`) and `encode(tokens, mask) → [B, Lc, Dc]`. */
export interface TextEncoderLike {
  readonly config: object;
  weights(): Record<string, tf.Variable>;
  encode(tokens: tf.Tensor, mask: tf.Tensor): tf.Tensor;
  dispose(): void;
}

/** Builds an encoder: fresh weights from the spec, or the given `text_encoder.*` tensors (copied). */
export type TextEncoderFactory = (spec: TextEncoderSpec, tensors?: Record<string, tf.Tensor>) => TextEncoderLike;

/** The tensor groups of a file (names without the group prefix). */
export interface CheckpointTensors {
  weights: Record<string, tf.Tensor>;
  m?: Record<string, tf.Tensor>;
  v?: Record<string, tf.Tensor>;
  ema?: Record<string, tf.Tensor>;
}

/** A decoded file: tensors (the caller owns and disposes them) and string metadata. */
export interface LoadedCheckpoint {
  weights: Record<string, tf.Tensor>;
  m: Record<string, tf.Tensor>;
  v: Record<string, tf.Tensor>;
  ema: Record<string, tf.Tensor>;
  metadata: Record<string, string>;
}

/**
 * The float type of a file's weights: `F32` (training checkpoints, which resume exactly), or `F16`
 * for model files that ship (half the bytes; they load back as float32).
 */
export type ModelFloatDtype = 'F32' | 'F16';

/** Safetensors bytes of the groups, float weights as `floatDtype` (default F32). */
export async function encodeCheckpoint(
  parts: CheckpointTensors,
  metadata: Record<string, string>,
  floatDtype: ModelFloatDtype = 'F32',
): Promise<Uint8Array> {
  const all: Record<string, tf.Tensor> = {};
  for (const [name, t] of Object.entries(parts.weights)) {
    if (name.startsWith(OPT_M) || name.startsWith(OPT_V) || name.startsWith(EMA)) {
      throw new Error(`weight name '${name}' collides with a checkpoint group prefix.`);
    }
    all[name] = t;
  }
  for (const [prefix, group] of [
    [OPT_M, parts.m],
    [OPT_V, parts.v],
    [EMA, parts.ema],
  ] as const) {
    for (const [name, t] of Object.entries(group ?? {})) all[`${prefix}${name}`] = t;
  }
  return saveSafetensors(all, metadata, { floatDtype });
}

/** Splits safetensors bytes into the groups. A malformed file is an InputError naming `where`. */
export function decodeCheckpoint(bytes: Uint8Array, where = 'the checkpoint'): LoadedCheckpoint {
  let file: ReturnType<typeof loadSafetensors>;
  try {
    file = loadSafetensors(bytes);
  } catch (err) {
    throw new InputError(
      `${where} is not a model or checkpoint file (${(err as Error).message.replace(/\.$/, '')}); pass a .safetensors file written by training or distillation.`,
    );
  }
  const out: LoadedCheckpoint = { weights: {}, m: {}, v: {}, ema: {}, metadata: file.metadata };
  for (const [name, t] of Object.entries(file.tensors)) {
    if (name.startsWith(OPT_M)) out.m[name.slice(OPT_M.length)] = t;
    else if (name.startsWith(OPT_V)) out.v[name.slice(OPT_V.length)] = t;
    else if (name.startsWith(EMA)) out.ema[name.slice(EMA.length)] = t;
    else out.weights[name] = t;
  }
  return out;
}

/** Disposes every tensor of a decoded file. */
export function disposeCheckpoint(ckpt: LoadedCheckpoint): void {
  for (const group of [ckpt.weights, ckpt.m, ckpt.v, ckpt.ema]) for (const t of Object.values(group)) t.dispose();
}

/**
 * A sampling-ready model file: the DiT under `model.` and the encoder under `text_encoder.`, the `ema`
 * weights (by prefixed name) replacing the live ones they name, and the config and encoder spec added
 * to `metadata`; float weights stored as `floatDtype` (default F32).
 */
export async function encodeTrainedModel(
  model: DiT,
  encoder: TextEncoderLike,
  spec: TextEncoderSpec,
  ema: Record<string, tf.Tensor>,
  metadata: Record<string, string>,
  floatDtype: ModelFloatDtype = 'F32',
): Promise<Uint8Array> {
  const weights: Record<string, tf.Tensor> = {};
  for (const [n, v] of Object.entries(model.weights())) weights[`${MODEL_PREFIX}${n}`] = v;
  Object.assign(weights, encoder.weights());
  for (const [n, v] of Object.entries(ema)) if (n in weights) weights[n] = v;
  return encodeCheckpoint(
    { weights },
    { ...metadata, [CONFIG_METADATA_KEY]: JSON.stringify(model.config), [TEXT_ENCODER_KEY]: JSON.stringify(spec) },
    floatDtype,
  );
}

/**
 * A loaded model: the DiT, its caption encoder (what `createEncoder` made), what the DiT predicts (a
 * sampler must be told: @t2md/shapes' `generate` takes it), and the file's metadata.
 */
export interface TrainedModel<E extends TextEncoderLike = TextEncoderLike> {
  model: DiT;
  encoder: E;
  spec: TextEncoderSpec;
  prediction: ModelPrediction;
  metadata: Record<string, string>;
  dispose(): void;
}

export interface LoadTrainedOptions {
  /** Prefer the EMA weights a checkpoint holds over the live ones (default true). */
  ema?: boolean;
  /** Changes the DiT config before the weights load (e.g. `{posEmbed: 'centered'}`). */
  configOverride?: Partial<DiTConfig>;
}

/**
 * Reads a model file or a training checkpoint from its bytes. Bad files are an InputError naming
 * `where` and what is wrong.
 */
export function loadTrainedModel<E extends TextEncoderLike = TextEncoderLike>(
  bytes: Uint8Array,
  createEncoder: (spec: TextEncoderSpec, tensors?: Record<string, tf.Tensor>) => E,
  opts: LoadTrainedOptions & { where?: string } = {},
): TrainedModel<E> {
  const where = opts.where ?? 'the model file';
  const ckpt = decodeCheckpoint(bytes, where);
  try {
    return fromCheckpoint(ckpt, createEncoder, where, opts);
  } finally {
    disposeCheckpoint(ckpt);
  }
}

/** Builds the models a decoded file describes (copies the tensors; the caller disposes `ckpt`). */
export function fromCheckpoint<E extends TextEncoderLike = TextEncoderLike>(
  ckpt: LoadedCheckpoint,
  createEncoder: (spec: TextEncoderSpec, tensors?: Record<string, tf.Tensor>) => E,
  where: string,
  opts: LoadTrainedOptions = {},
): TrainedModel<E> {
  const meta = ckpt.metadata;
  const config = parseMetadataJson<DiTConfig>(meta[CONFIG_METADATA_KEY], `${where}'s '${CONFIG_METADATA_KEY}' metadata`);
  const spec = parseMetadataJson<TextEncoderSpec>(meta[TEXT_ENCODER_KEY], `${where}'s '${TEXT_ENCODER_KEY}' metadata`);
  const prediction = readPrediction(meta, where);
  const tensors: Record<string, tf.Tensor> = { ...ckpt.weights };
  if (opts.ema !== false) for (const [n, t] of Object.entries(ckpt.ema)) if (n in tensors) tensors[n] = t;
  const model = createDiT({ ...config, ...(opts.configOverride ?? {}) });
  let encoder: E | undefined;
  try {
    const own = Object.fromEntries(Object.entries(tensors).filter(([n]) => n.startsWith(MODEL_PREFIX)));
    // The variables take a reference to the tensors' data (tfjs counts references), so the caller may
    // dispose the decoded file afterwards.
    loadWeightsInto(model, own, { prefix: MODEL_PREFIX });
    encoder = createEncoder(spec, Object.fromEntries(Object.entries(tensors).filter(([n]) => n.startsWith(TEXT_ENCODER_PREFIX))));
  } catch (err) {
    model.dispose();
    throw err;
  }
  const enc = encoder;
  return {
    model,
    encoder: enc,
    spec,
    prediction,
    metadata: meta,
    dispose: () => {
      model.dispose();
      enc.dispose();
    },
  };
}

/** A metadata value parsed as JSON, or an InputError naming `where`. */
export function parseMetadataJson<T>(text: string | undefined, where: string): T {
  check(text != null, () => `${where} is missing; pass a file written by t2md train or t2md distill.`);
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new InputError(`${where} is not valid JSON (${(err as Error).message}); the file is damaged, write it again.`);
  }
}
