import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { placeholderNotice, presetOf } from './placeholder.js';

const preset = (name: string) => ({ 't2md.preset': JSON.stringify({ name, teacher: {} }) });

/** The metadata of a safetensors file: its JSON header's `__metadata__` (8-byte little-endian length first). */
function metadataOf(path: string): Record<string, string> {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')).__metadata__ ?? {};
}

describe('placeholderNotice', () => {
  it('is one sentence when a model was trained with the tiny preset, and nothing otherwise', () => {
    expect(presetOf(preset('tiny'))).toBe('tiny');
    expect(presetOf({})).toBeUndefined();
    expect(presetOf({ 't2md.preset': '{not json' })).toBeUndefined();
    const notice = placeholderNotice(preset('tiny'), preset('shapes'));
    expect(notice).toMatch(/^The shipped models are placeholders: trained with the tiny preset in minutes on a CPU, .+\.$/);
    expect(notice?.split('. ')).toHaveLength(1);
    expect(placeholderNotice(preset('shapes'), preset('shapes'))).toBeUndefined();
    expect(placeholderNotice({}, {})).toBeUndefined();
  });

  it('reads the preset the shipped model files name', () => {
    for (const name of ['teacher', 'student']) {
      const meta = metadataOf(join(__dirname, '..', '..', 'models', `${name}.safetensors`));
      expect(presetOf(meta), name).toMatch(/^(tiny|shapes)$/);
    }
  });
});
