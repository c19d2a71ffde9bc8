/**
 * Training checkpoints on disk: the format (tensor groups `model.*`, `text_encoder.*`, `optimizer.m.*`,
 * `optimizer.v.*`, `ema.*` and the `t2md.*` metadata) lives in @t2md/dit's model-file.ts, so that
 * sampling reads it without the trainer; this file writes and reads it atomically from paths.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '@t2md/core';
import { type CheckpointTensors, decodeCheckpoint, encodeCheckpoint, type LoadedCheckpoint } from '@t2md/dit';
import { type AtomicWriteHooks, atomicWriteFile, removeStaleTemps } from './atomic.js';

export type { CheckpointTensors, LoadedCheckpoint } from '@t2md/dit';
export { decodeCheckpoint, disposeCheckpoint, EMA, encodeCheckpoint, OPT_M, OPT_V } from '@t2md/dit';

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
