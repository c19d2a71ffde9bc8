/**
 * Sampling-ready model files (`DIR/model.safetensors`, `DIR/<stage>.safetensors`) on disk. The format
 * (the DiT under `model.`, the caption encoder under `text_encoder.`, EMA weights folded in, metadata
 * `t2md.config`, `t2md.text_encoder`, `t2md.preset`, `t2md.train`) is @t2md/dit's `model-file.ts`,
 * which reads and writes bytes; this adds paths, atomic writes, the trainer's preset, the `t2md.train`
 * record, and the header alone (what a run is planned from).
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { InputError, type RngState } from '@t2md/core';
import {
  CONFIG_METADATA_KEY,
  type DiT,
  type DiTConfig,
  type TrainedModel as DiTTrainedModel,
  fromCheckpoint as ditFromCheckpoint,
  encodeTrainedModel,
  type LoadedCheckpoint,
  type LoadTrainedOptions,
  loadTrainedModel as loadTrainedBytes,
  type ModelFloatDtype,
  type ModelPrediction,
  PRESET_KEY,
  parseMetadataJson,
  type ResolvedDiTConfig,
  readPrediction,
  resolveConfig,
  TEXT_ENCODER_KEY,
  type TextEncoderFactory,
  type TextEncoderLike,
  type TextEncoderSpec,
  TRAIN_KEY,
} from '@t2md/dit';
import type * as tf from '@tensorflow/tfjs-core';
import { atomicWriteFile } from '../checkpoint/atomic.js';
import type { StageName, TrainPreset } from './config.js';

export { PREDICTION_KEY, PRESET_KEY, TEXT_ENCODER_KEY, TEXT_ENCODER_PREFIX, TRAIN_KEY } from '@t2md/dit';

/** The training state a checkpoint records under `t2md.train`. */
export interface TrainState {
  format: 1;
  /** `teacher` for t2md train, `distill` for t2md distill. */
  run: 'teacher' | 'distill';
  stage: StageName;
  /** Optimiser steps done in `stage`. */
  step: number;
  /** The stage's planned steps (`step >= steps`: the stage is complete). */
  steps: number;
  /** Trainer RNG and data-source positions after `step`. */
  rng: RngState;
  data: unknown;
  optimizerStep: number;
  /** The teacher file a distill run read. */
  teacher?: string;
  /** Whether the student started from the teacher's shared weights (distill runs; absent means true). */
  teacherInit?: boolean;
  /** The command lines of this run and of the runs it continues (`RunOptions.command`), oldest first. */
  commands?: string[];
  /** A distill run: the commands the teacher file records. */
  teacherCommands?: string[];
  /**
   * The model file the run started from (`RunOptions.init`) and where that file's run stood; its
   * commands come first in `commands`.
   */
  init?: InitRecord;
}

/** Where an `init` run's weights came from. */
export interface InitRecord {
  file: string;
  stage?: string;
  step?: number;
}

/** What a run records about where its weights came from (in `t2md.train`, checkpoint and model files). */
export type Provenance = Pick<TrainState, 'teacher' | 'teacherInit' | 'commands' | 'teacherCommands' | 'init'>;

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

/** What a model file's header says: its DiT config, caption encoder, preset and `t2md.train` record. */
export interface ModelHeader {
  readonly path: string;
  /** Resolved (defaults filled in), as `createDiT` builds it; a bad config is an InputError here. */
  readonly config: ResolvedDiTConfig;
  readonly spec: TextEncoderSpec;
  /** What the DiT predicts (`t2md.prediction`; absent: epsilon). */
  readonly prediction: ModelPrediction;
  readonly preset?: TrainPreset;
  /** The `t2md.train` record, when the file has a readable one. */
  readonly state?: Partial<TrainState>;
}

/** Reads a model file's header (not its weights); errors as `loadTrainedModel` words them. */
export function readModelHeader(path: string): ModelHeader {
  const metadata = readMetadata(path, 'model');
  const where = (key: string) => `${path}'s '${key}' metadata`;
  const config = parseMetadataJson<DiTConfig>(metadata[CONFIG_METADATA_KEY], where(CONFIG_METADATA_KEY));
  const spec = parseMetadataJson<TextEncoderSpec>(metadata[TEXT_ENCODER_KEY], where(TEXT_ENCODER_KEY));
  const resolved = resolveConfig(config).config;
  const preset = metadata[PRESET_KEY] != null ? parseMetadataJson<TrainPreset>(metadata[PRESET_KEY], where(PRESET_KEY)) : undefined;
  const prediction = readPrediction(metadata, path);
  return { path, config: resolved, spec, prediction, preset, state: parseTrainState(metadata[TRAIN_KEY]) };
}

/** What a checkpoint's header says: the training state and preset every checkpoint records, and its model. */
export interface CheckpointHeader {
  readonly path: string;
  readonly state: TrainState;
  readonly preset: TrainPreset;
  /** The DiT being trained (resolved) and the caption encoder. */
  readonly config: ResolvedDiTConfig;
  readonly spec: TextEncoderSpec;
  /** What the DiT being trained predicts (`t2md.prediction`; absent: epsilon). */
  readonly prediction: ModelPrediction;
}

/** Reads a checkpoint's header (not its weights); errors as `loadCheckpoint` and `fromCheckpoint` word them. */
export function readCheckpointHeader(path: string): CheckpointHeader {
  const metadata = readMetadata(path, 'checkpoint');
  const where = (key: string) => `${path}'s '${key}' metadata`;
  const state = parseMeta<TrainState>(metadata[TRAIN_KEY], where(TRAIN_KEY));
  const preset = parseMeta<TrainPreset>(metadata[PRESET_KEY], where(PRESET_KEY));
  const config = resolveConfig(parseMetadataJson<DiTConfig>(metadata[CONFIG_METADATA_KEY], where(CONFIG_METADATA_KEY))).config;
  const spec = parseMetadataJson<TextEncoderSpec>(metadata[TEXT_ENCODER_KEY], where(TEXT_ENCODER_KEY));
  return { path, state, preset, config, spec, prediction: readPrediction(metadata, path) };
}

function parseMeta<T>(text: string | undefined, where: string): T {
  if (text == null) throw new InputError(`${where} is missing; the checkpoint was not written by t2md train or distill.`);
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new InputError(`${where} is not valid JSON (${(err as Error).message}); the checkpoint is damaged.`);
  }
}

/** A model file's `t2md.train` record, when it has a readable one (files written by hand may not). */
function parseTrainState(text: string | undefined): Partial<TrainState> | undefined {
  try {
    const v = JSON.parse(text ?? 'null') as unknown;
    return v != null && typeof v === 'object' ? (v as Partial<TrainState>) : undefined;
  } catch {
    return undefined;
  }
}

export function isStrings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

// A header this large is not a tensor index (core's loadSafetensors draws the same line).
const MAX_HEADER = 100 * 1024 * 1024;

/**
 * The metadata of a model file or a checkpoint, read from its header alone (the weights stay on disk):
 * what a run is planned from. A missing file or a malformed header is an InputError naming the file,
 * worded as `loadTrainedModel` (`kind: 'model'`) and `loadCheckpoint` (`'checkpoint'`) word it.
 */
function readMetadata(path: string, kind: 'model' | 'checkpoint'): Record<string, string> {
  let text: string;
  try {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const head = Buffer.alloc(8);
      if (size < 8 || readSync(fd, head, 0, 8, 0) < 8)
        return malformed(path, `it is ${size} bytes long, shorter than the 8-byte header length`);
      const n = Number(head.readBigUInt64LE(0));
      if (n > size - 8) return malformed(path, `the header claims ${n} bytes but only ${size - 8} follow`);
      if (n > MAX_HEADER) return malformed(path, `the header length ${n} exceeds ${MAX_HEADER} bytes`);
      const bytes = Buffer.alloc(n);
      readSync(fd, bytes, 0, n, 8);
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    // no errno: the TextDecoder refused the bytes
    if (code == null) return malformed(path, `the header is not UTF-8 JSON (${(err as Error).message})`);
    const missing =
      kind === 'model' ? 'pass the model file that t2md train or distill wrote' : 'check the path (train or distill writes it)';
    throw new InputError(code === 'ENOENT' ? `${path} does not exist; ${missing}.` : `${path} could not be read (${code}).`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return malformed(path, `the header is not UTF-8 JSON (${(err as Error).message})`);
  }
  if (header == null || typeof header !== 'object' || Array.isArray(header)) return malformed(path, 'the header is not a JSON object');
  const raw = '__metadata__' in header ? header.__metadata__ : {};
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) return malformed(path, '__metadata__ is not an object');
  for (const [k, v] of Object.entries(raw)) if (typeof v !== 'string') return malformed(path, `metadata value '${k}' is not a string`);
  return raw as Record<string, string>;
}

/** The message `decodeCheckpoint` gives for a file that is not safetensors. */
function malformed(path: string, what: string): never {
  throw new InputError(
    `${path} is not a model or checkpoint file (Invalid safetensors file: ${what}); pass a .safetensors file written by training or distillation.`,
  );
}
