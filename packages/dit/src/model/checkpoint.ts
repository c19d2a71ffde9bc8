import { check, fmtShape, InputError, loadSafetensors, saveSafetensors } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { configFromJson } from './config.js';
import { createDiT, type DiT } from './dit.js';

/** The safetensors metadata key holding the model's resolved config as JSON. */
export const CONFIG_METADATA_KEY = 't2md.config';

/**
 * PixArt checkpoints carry the fixed sin-cos table as a buffer named `pos_embed`; here it is computed
 * for each grid, so the loader skips it.
 */
const COMPUTED_BUFFERS = new Set(['pos_embed']);

/** Options for reading weights out of a file that holds more than one model (e.g. a training checkpoint). */
export interface LoadWeightsOptions {
  /** Only tensors named `prefix + name` are the model's (the prefix is stripped); others are ignored. */
  prefix?: string;
}

/**
 * The model's weights and config as safetensors bytes (PixArt / mamba_ssm names and layouts, float32),
 * with the resolved config as JSON under metadata `t2md.config` plus `extraMetadata`.
 */
export async function saveDiT(model: DiT, extraMetadata: Record<string, string> = {}): Promise<Uint8Array> {
  return saveSafetensors(model.weights(), { ...extraMetadata, [CONFIG_METADATA_KEY]: JSON.stringify(model.config) });
}

/**
 * Builds the model a `saveDiT` file describes and loads its weights. A file that is not safetensors,
 * has no config, or whose tensors do not fit the config (missing, unexpected or mis-shaped) throws one
 * InputError naming them.
 */
export function loadDiT(bytes: Uint8Array, opts: LoadWeightsOptions = {}): DiT {
  let file: ReturnType<typeof loadSafetensors>;
  try {
    file = loadSafetensors(bytes);
  } catch (err) {
    throw new InputError(
      `the model file could not be read (${(err as Error).message.replace(/\.$/, '')}); pass a .safetensors file written by saveDiT or t2md train.`,
    );
  }
  try {
    const text = file.metadata[CONFIG_METADATA_KEY];
    check(
      text != null,
      `the model file has no '${CONFIG_METADATA_KEY}' metadata, so its architecture is unknown; save it with saveDiT, or create the model with createDiT(config) and call loadWeightsInto.`,
    );
    const model = createDiT(configFromJson(text, `the model file's '${CONFIG_METADATA_KEY}' metadata`));
    try {
      loadWeightsInto(model, file.tensors, opts);
    } catch (err) {
      model.dispose();
      throw err;
    }
    return model;
  } finally {
    tf.dispose(Object.values(file.tensors));
  }
}

/**
 * Assigns `tensors` (by state-dict name) to the model's weights. Every weight must be present with its
 * exact shape and no unknown tensor may be left over (PixArt's computed `pos_embed` excepted);
 * otherwise one InputError lists what is missing, unexpected and mis-shaped, and nothing is assigned.
 * The variables take the tensors' data (no copy); the caller may dispose `tensors` afterwards.
 * @returns the names loaded, sorted
 */
export function loadWeightsInto(model: DiT, tensors: Record<string, tf.Tensor>, opts: LoadWeightsOptions = {}): string[] {
  const prefix = opts.prefix ?? '';
  const given = new Map<string, tf.Tensor>();
  for (const [name, t] of Object.entries(tensors)) {
    if (!name.startsWith(prefix)) continue;
    const bare = name.slice(prefix.length);
    if (!COMPUTED_BUFFERS.has(bare)) given.set(bare, t);
  }
  const weights = model.weights();
  const missing: string[] = [];
  const misShaped: string[] = [];
  for (const [name, v] of Object.entries(weights)) {
    const t = given.get(name);
    if (t == null) missing.push(name);
    else if (t.dtype !== 'float32' || fmtShape(t.shape) !== fmtShape(v.shape)) {
      misShaped.push(
        `${prefix}${name} is ${t.dtype === 'float32' ? '' : `${t.dtype} `}${fmtShape(t.shape)} but the model needs ${fmtShape(v.shape)}`,
      );
    }
  }
  const extra = [...given.keys()].filter((name) => weights[name] == null).map((n) => prefix + n);
  if (missing.length + misShaped.length + extra.length > 0) {
    const parts: string[] = [];
    if (missing.length) parts.push(`${missing.length} missing (${list(missing.map((n) => prefix + n))})`);
    if (extra.length) parts.push(`${extra.length} unexpected (${list(extra)})`);
    if (misShaped.length) parts.push(`${misShaped.length} mis-shaped (${list(misShaped)})`);
    throw new InputError(
      `the checkpoint's tensors do not fit this ${model.config.layout} model (hidden ${model.config.hiddenSize}): ${parts.join('; ')}; load a checkpoint saved from the same config.`,
    );
  }
  for (const [name, v] of Object.entries(weights)) {
    const t = given.get(name)!;
    // assigning a variable its own buffer would free it (tfjs drops the old reference first)
    if (t.dataId !== v.dataId) v.assign(t);
  }
  return Object.keys(weights).sort();
}

function list(names: string[], max = 6): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}
