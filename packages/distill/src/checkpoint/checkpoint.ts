/**
 * Training checkpoints: one safetensors file holding
 *
 *   model.*            the DiT's weights (PixArt names under `model.`; `loadDiT(bytes, {prefix: 'model.'})` reads them)
 *   text_encoder.*     the caption encoder's weights
 *   optimizer.m.NAME   AdamW first moments,  NAME from the two above (only trained weights)
 *   optimizer.v.NAME   AdamW second moments
 *   ema.NAME           EMA of the trained weights
 *
 * and string metadata (`t2md.config`: the DiT config, `t2md.text_encoder`: the encoder config,
 * `t2md.train`: step, stage, RNG and data states, the training config). Everything is stored as F32,
 * so a resumed run continues from bit-identical state.
 */
import { readFileSync } from 'node:fs';
import { InputError, loadSafetensors, saveSafetensors } from '@t2md/core';
import type * as tf from '@tensorflow/tfjs-core';
import { type AtomicWriteHooks, atomicWriteFile, removeStaleTemps } from './atomic.js';

export const OPT_M = 'optimizer.m.';
export const OPT_V = 'optimizer.v.';
export const EMA = 'ema.';

/** The tensor groups of a checkpoint (names without the group prefix). */
export interface CheckpointTensors {
  weights: Record<string, tf.Tensor>;
  m?: Record<string, tf.Tensor>;
  v?: Record<string, tf.Tensor>;
  ema?: Record<string, tf.Tensor>;
}

/** A loaded checkpoint: tensors (the caller owns and disposes them) and string metadata. */
export interface LoadedCheckpoint {
  weights: Record<string, tf.Tensor>;
  m: Record<string, tf.Tensor>;
  v: Record<string, tf.Tensor>;
  ema: Record<string, tf.Tensor>;
  metadata: Record<string, string>;
}

/** Safetensors bytes of a checkpoint. */
export async function encodeCheckpoint(parts: CheckpointTensors, metadata: Record<string, string>): Promise<Uint8Array> {
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
  return saveSafetensors(all, metadata, { floatDtype: 'F32' });
}

/** Writes a checkpoint to `path` atomically (see atomic.ts) and clears temporaries of killed earlier writes. */
export async function saveCheckpoint(
  path: string,
  parts: CheckpointTensors,
  metadata: Record<string, string>,
  hooks?: AtomicWriteHooks,
): Promise<void> {
  const bytes = await encodeCheckpoint(parts, metadata);
  removeStaleTemps(path);
  atomicWriteFile(path, bytes, hooks);
}

/** Splits safetensors bytes into the checkpoint groups. A malformed file is an InputError naming `where`. */
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

/** Reads and decodes a checkpoint file; a missing or unreadable file is an InputError naming it. */
export function loadCheckpoint(path: string): LoadedCheckpoint {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(
      code === 'ENOENT'
        ? `${path} does not exist; check the path (train or distill writes it).`
        : `${path} could not be read (${code ?? (err as Error).message}).`,
    );
  }
  return decodeCheckpoint(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path);
}

/** Disposes every tensor of a loaded checkpoint. */
export function disposeCheckpoint(ckpt: LoadedCheckpoint): void {
  for (const group of [ckpt.weights, ckpt.m, ckpt.v, ckpt.ema]) for (const t of Object.values(group)) t.dispose();
}
