import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { InputError } from '@t2md/core';
import { loadTrainedModel, type PosEmbedKind, type TrainedModel } from '@t2md/dit';
import { createCaptionEncoder, type ShippedSampling, sha256Hex, shippedSampling } from '@t2md/shapes';

const require = createRequire(import.meta.url);

/** Names `--model` accepts besides a path: the models shipped in @t2md/shapes. */
export const SHIPPED = ['teacher', 'student'] as const;

/** The file of a shipped model, or undefined when this install has none. */
export function shippedModelPath(name: (typeof SHIPPED)[number]): string | undefined {
  try {
    const root = dirname(require.resolve('@t2md/shapes/package.json'));
    const path = join(root, 'models', `${name}.safetensors`);
    return existsSync(path) ? path : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The measured step count of a shipped model (the step table, models/sampling.json, checked against the
 * file's size and sha256), or undefined when `spec` names no shipped model (a path, or none installed).
 */
export async function shippedSteps(spec: string): Promise<ShippedSampling | undefined> {
  if (!(SHIPPED as readonly string[]).includes(spec)) return undefined;
  const name = spec as (typeof SHIPPED)[number];
  const path = shippedModelPath(name);
  if (path == null) return undefined;
  const bytes = readFileSync(path);
  return shippedSampling(name, { bytes: bytes.length, sha256: await sha256Hex(bytes) });
}

/**
 * Loads `--model teacher|student|PATH`: a shipped model, a model file, or a training checkpoint
 * (`DIR/latest.safetensors`, EMA weights preferred). A folder means its `model.safetensors`. The
 * format is @t2md/dit's: sampling needs no trainer code. `posEmbed` replaces the file's positional
 * embedding (`--pos-embed`; the weights are the same, only the token coordinates change). `flag` names
 * the argument in errors (default `--model`).
 */
export function loadModel(spec: string, opts: { posEmbed?: PosEmbedKind; flag?: string } = {}): TrainedModel & { source: string } {
  const flag = opts.flag ?? '--model';
  let path = spec;
  if ((SHIPPED as readonly string[]).includes(spec)) {
    const shipped = shippedModelPath(spec as (typeof SHIPPED)[number]);
    if (shipped == null) {
      throw new InputError(
        `this install ships no '${spec}' model yet; train one (t2md train --out DIR, t2md distill --teacher DIR/model.safetensors --out DIR2) and pass --model PATH.`,
      );
    }
    path = shipped;
  } else if (existsSync(join(spec, 'model.safetensors'))) {
    path = join(spec, 'model.safetensors');
  } else if (!existsSync(spec)) {
    throw new InputError(
      `${flag} ${spec} is neither teacher, student nor an existing file; pass a .safetensors written by t2md train or distill.`,
    );
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new InputError(`${flag} ${path} could not be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`);
  }
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const configOverride = opts.posEmbed != null ? { posEmbed: opts.posEmbed } : undefined;
  const trained = loadTrainedModel(view, createCaptionEncoder, { where: path, configOverride });
  return Object.assign(trained, { source: path });
}
