/**
 * Sampling-ready model files (`DIR/model.safetensors`, `DIR/<stage>.safetensors`) on disk. The format
 * (the DiT under `model.`, the caption encoder under `text_encoder.`, EMA weights folded in, metadata
 * `t2md.config`, `t2md.text_encoder`, `t2md.preset`, `t2md.train`) is @t2md/dit's `model-file.ts`,
 * which reads and writes bytes; this adds paths, atomic writes and the trainer's preset.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '@t2md/core';
import {
  type DiT,
  type TrainedModel as DiTTrainedModel,
  fromCheckpoint as ditFromCheckpoint,
  encodeTrainedModel,
  type LoadedCheckpoint,
  type LoadTrainedOptions,
  loadTrainedModel as loadTrainedBytes,
  type ModelFloatDtype,
  PRESET_KEY,
  parseMetadataJson,
  type TextEncoderFactory,
  type TextEncoderLike,
  type TextEncoderSpec,
} from '@t2md/dit';
import type * as tf from '@tensorflow/tfjs-core';
import { atomicWriteFile } from '../checkpoint/atomic.js';
import type { TrainPreset } from './config.js';

export { PRESET_KEY, TEXT_ENCODER_KEY, TEXT_ENCODER_PREFIX, TRAIN_KEY } from '@t2md/dit';

/**
 * Writes the model (with `ema` weights replacing the live ones they name) atomically to `path`, float
 * weights as `floatDtype` (default F32; F16 for files that ship).
 */
export async function saveTrainedModel(
  path: string,
  model: DiT,
  encoder: TextEncoderLike,
  spec: TextEncoderSpec,
  ema: Record<string, tf.Tensor>,
  metadata: Record<string, string>,
  floatDtype: ModelFloatDtype = 'F32',
): Promise<void> {
  atomicWriteFile(path, await encodeTrainedModel(model, encoder, spec, ema, metadata, floatDtype));
}

/** A loaded model (see @t2md/dit's `TrainedModel`) and the preset it was trained with, when the file records it. */
export interface TrainedModel extends DiTTrainedModel {
  preset?: TrainPreset;
}

/**
 * Reads a model file or a training checkpoint (bytes or a path). With `ema` (default true) the EMA
 * weights a checkpoint holds replace the live ones. Bad files are an InputError naming what is wrong.
 * `configOverride` changes the DiT config before the weights load (e.g. `{posEmbed: 'centered'}`).
 */
export function loadTrainedModel(
  source: string | Uint8Array,
  createEncoder: TextEncoderFactory,
  opts: LoadTrainedOptions = {},
): TrainedModel {
  if (typeof source !== 'string') return withPreset(loadTrainedBytes(source, createEncoder, opts), 'the model file');
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
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return withPreset(loadTrainedBytes(view, createEncoder, { ...opts, where: source }), source);
}

/** Builds the models a decoded checkpoint describes (copies the tensors; the caller disposes `ckpt`). */
export function fromCheckpoint(
  ckpt: LoadedCheckpoint,
  createEncoder: TextEncoderFactory,
  where: string,
  opts: LoadTrainedOptions = {},
): TrainedModel {
  return withPreset(ditFromCheckpoint(ckpt, createEncoder, where, opts), where);
}

function withPreset(m: DiTTrainedModel, where: string): TrainedModel {
  const text = m.metadata[PRESET_KEY];
  if (text == null) return m;
  try {
    return Object.assign(m, { preset: parseMetadataJson<TrainPreset>(text, `${where}'s '${PRESET_KEY}' metadata`) });
  } catch (err) {
    m.dispose();
    throw err;
  }
}
