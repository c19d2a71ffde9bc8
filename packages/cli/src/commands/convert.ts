import { closeSync, mkdirSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputError, initBackend } from '@t2md/core';
import { encodeTrainedModel, type ModelFloatDtype, type PosEmbedKind, TRAIN_KEY } from '@t2md/dit';
import { UsageError } from '../errors.js';
import { loadModel } from '../models.js';
import { checkOutFile } from '../out-path.js';
import { writeFileAtomic } from '../png.js';
import { commandLine } from './train.js';

export interface ConvertOptions {
  out: string;
  /** The positional embedding the new file's config names. */
  posEmbed?: PosEmbedKind;
  /** Float type of the new file's weights (default: the input's). */
  modelDtype?: 'f16' | 'f32';
}

/**
 * `t2md convert MODEL --out FILE`: the same weights in a new model file, with another positional
 * embedding (`--pos-embed`; e.g. `interpolated`, so that a model trained with `sincos` at 32 px draws
 * at 64 px from coordinates it has seen, and unchanged at 32 px) and/or float type (`--model-dtype`).
 * The file's other metadata is kept, and this command line is appended to the commands its `t2md.train`
 * record lists, so the file still names every command that made it. A checkpoint in gives a model file
 * out (its EMA weights). Writing over the input is allowed: the input is read whole first, and the new
 * file is renamed over it.
 */
export async function convertCommand(model: string, opts: ConvertOptions): Promise<void> {
  if (opts.posEmbed == null && opts.modelDtype == null) {
    throw new UsageError('t2md convert needs something to change: pass --pos-embed <kind> and/or --model-dtype <f16|f32>.');
  }
  const out = checkOutFile('--out', opts.out);
  // Converting moves weights through tensors and back; no kernel runs, so the plain CPU backend does.
  await initBackend({ backend: 'cpu' });
  const trained = loadModel(model, { posEmbed: opts.posEmbed, flag: 't2md convert' });
  try {
    const from = floatDtypeOf(trained.source);
    const dtype: ModelFloatDtype = opts.modelDtype != null ? (opts.modelDtype === 'f16' ? 'F16' : 'F32') : from;
    const metadata = { ...trained.metadata, [TRAIN_KEY]: withCommand(trained.metadata[TRAIN_KEY], commandLine(), trained.source) };
    const bytes = await encodeTrainedModel(trained.model, trained.encoder, trained.spec, {}, metadata, dtype);
    mkdirSync(dirname(out), { recursive: true });
    writeFileAtomic(out, bytes);
    process.stdout.write(
      `wrote ${out} (${(bytes.length / 2 ** 20).toFixed(2)} MiB, ${dtype}, positional embedding ${trained.model.config.posEmbed}) from ${trained.source}\n`,
    );
  } finally {
    trained.dispose();
  }
}

/** `t2md.train`'s JSON with `command` appended to its `commands` (a record is made when there is none). */
function withCommand(record: string | undefined, command: string, where: string): string {
  let parsed: Record<string, unknown> = {};
  if (record != null) {
    let v: unknown;
    try {
      v = JSON.parse(record);
    } catch {
      v = undefined;
    }
    // the record is the file's provenance: converting must not drop it silently
    if (v == null || typeof v !== 'object' || Array.isArray(v)) {
      throw new InputError(`${where}'s '${TRAIN_KEY}' metadata is not a JSON object; the file is damaged, write it again.`);
    }
    parsed = v as Record<string, unknown>;
  }
  const commands = Array.isArray(parsed.commands) ? parsed.commands.filter((c) => typeof c === 'string') : [];
  return JSON.stringify({ ...parsed, commands: [...commands, command] });
}

/** F16 when the file stores any float weight as F16 (what `--model-dtype f16` writes), else F32. */
function floatDtypeOf(path: string): ModelFloatDtype {
  const fd = openSync(path, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const header = Buffer.alloc(Number(len.readBigUInt64LE(0)));
    readSync(fd, header, 0, header.length, 8);
    const entries = Object.values(JSON.parse(header.toString('utf8')) as Record<string, { dtype?: string }>);
    return entries.some((e) => e.dtype === 'F16') ? 'F16' : 'F32';
  } finally {
    closeSync(fd);
  }
}
