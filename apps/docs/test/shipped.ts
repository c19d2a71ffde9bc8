import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { placeholderNotice } from '@t2md/shapes';

/** The repository's root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The metadata of a safetensors file: its JSON header's `__metadata__` (after the header's 8-byte little-endian length). */
export function metadataOf(path: string): Record<string, string> {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')).__metadata__ ?? {};
}

/** What the README, the playground and `t2md demo` say about the shipped models: the notice, or undefined when they are real. */
export function shippedModelsNotice(): string | undefined {
  const dir = join(ROOT, 'packages', 'shapes', 'models');
  return placeholderNotice(...['teacher', 'student'].map((n) => metadataOf(join(dir, `${n}.safetensors`))));
}
