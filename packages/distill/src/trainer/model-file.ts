/**
 * Sampling-ready model files (`DIR/model.safetensors`, `DIR/<stage>.safetensors`): the DiT under
 * `model.` and the caption encoder under `text_encoder.`, with the EMA weights folded in, and metadata
 * `t2md.config` (DiT config), `t2md.text_encoder` (encoder spec), `t2md.preset` and `t2md.train`.
 * `loadDiT(bytes, {prefix: 'model.'})` from @t2md/dit reads the DiT part on its own; `loadTrainedModel`
 * reads both, from a model file or a training checkpoint (whose `ema.*` it prefers).
 */
import { readFileSync } from 'node:fs';
import { check, InputError } from '@t2md/core';
import { CONFIG_METADATA_KEY, createDiT, type DiT, type DiTConfig, loadWeightsInto } from '@t2md/dit';
import type * as tf from '@tensorflow/tfjs-core';
import { atomicWriteFile } from '../checkpoint/atomic.js';
import { decodeCheckpoint, disposeCheckpoint, encodeCheckpoint, type LoadedCheckpoint } from '../checkpoint/checkpoint.js';
import type { TrainPreset } from './config.js';
import { MODEL_PREFIX } from './stage-step.js';
import type { TextEncoderFactory, TextEncoderLike, TextEncoderSpec } from './types.js';

export const TEXT_ENCODER_KEY = 't2md.text_encoder';
export const PRESET_KEY = 't2md.preset';
export const TRAIN_KEY = 't2md.train';
export const TEXT_ENCODER_PREFIX = 'text_encoder.';

/** Writes the model (with `ema` weights replacing the live ones they name) atomically to `path`. */
export async function saveTrainedModel(
  path: string,
  model: DiT,
  encoder: TextEncoderLike,
  spec: TextEncoderSpec,
  ema: Record<string, tf.Tensor>,
  metadata: Record<string, string>,
): Promise<void> {
  const weights: Record<string, tf.Tensor> = {};
  for (const [n, v] of Object.entries(model.weights())) weights[`${MODEL_PREFIX}${n}`] = v;
  Object.assign(weights, encoder.weights());
  for (const [n, v] of Object.entries(ema)) if (n in weights) weights[n] = v;
  const bytes = await encodeCheckpoint(
    { weights },
    { ...metadata, [CONFIG_METADATA_KEY]: JSON.stringify(model.config), [TEXT_ENCODER_KEY]: JSON.stringify(spec) },
  );
  atomicWriteFile(path, bytes);
}

/** A loaded model: the DiT, its caption encoder, and what the file says about how it was made. */
export interface TrainedModel {
  model: DiT;
  encoder: TextEncoderLike;
  spec: TextEncoderSpec;
  /** The preset it was trained with, when the file records it. */
  preset?: TrainPreset;
  metadata: Record<string, string>;
  dispose(): void;
}

/**
 * Reads a model file or a training checkpoint (bytes or a path). With `ema` (default true) the EMA
 * weights a checkpoint holds replace the live ones. Bad files are an InputError naming what is wrong.
 * `configOverride` changes the DiT config before the weights load (e.g. `{posEmbed: 'centered'}`).
 */
export function loadTrainedModel(
  source: string | Uint8Array,
  createEncoder: TextEncoderFactory,
  opts: { ema?: boolean; configOverride?: Partial<DiTConfig> } = {},
): TrainedModel {
  const where = typeof source === 'string' ? source : 'the model file';
  let ckpt: LoadedCheckpoint;
  if (typeof source === 'string') {
    let bytes: Buffer;
    try {
      bytes = readFileSync(source);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new InputError(
        code === 'ENOENT'
          ? `${source} does not exist; pass the model file that t2md train or distill wrote.`
          : `${source} could not be read (${code}).`,
      );
    }
    ckpt = decodeCheckpoint(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), where);
  } else {
    ckpt = decodeCheckpoint(source, where);
  }
  try {
    return fromCheckpoint(ckpt, createEncoder, where, opts);
  } finally {
    disposeCheckpoint(ckpt);
  }
}

/** Builds the models a decoded checkpoint describes (copies the tensors; the caller disposes `ckpt`). */
export function fromCheckpoint(
  ckpt: LoadedCheckpoint,
  createEncoder: TextEncoderFactory,
  where: string,
  opts: { ema?: boolean; configOverride?: Partial<DiTConfig> } = {},
): TrainedModel {
  const meta = ckpt.metadata;
  const config = parseJson<DiTConfig>(meta[CONFIG_METADATA_KEY], `${where}'s '${CONFIG_METADATA_KEY}' metadata`);
  const spec = parseJson<TextEncoderSpec>(meta[TEXT_ENCODER_KEY], `${where}'s '${TEXT_ENCODER_KEY}' metadata`);
  const preset = meta[PRESET_KEY] != null ? parseJson<TrainPreset>(meta[PRESET_KEY], `${where}'s '${PRESET_KEY}' metadata`) : undefined;
  const tensors: Record<string, tf.Tensor> = { ...ckpt.weights };
  if (opts.ema !== false) for (const [n, t] of Object.entries(ckpt.ema)) if (n in tensors) tensors[n] = t;
  const model = createDiT({ ...config, ...(opts.configOverride ?? {}) });
  let encoder: TextEncoderLike | undefined;
  try {
    const own = Object.fromEntries(Object.entries(tensors).filter(([n]) => n.startsWith(MODEL_PREFIX)));
    // The variables take a reference to the tensors' data (tfjs counts references), so the caller may
    // dispose the checkpoint afterwards.
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
    preset,
    metadata: meta,
    dispose: () => {
      model.dispose();
      enc.dispose();
    },
  };
}

function parseJson<T>(text: string | undefined, where: string): T {
  check(text != null, () => `${where} is missing; pass a file written by t2md train or t2md distill.`);
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new InputError(`${where} is not valid JSON (${(err as Error).message}); the file is damaged, write it again.`);
  }
}
