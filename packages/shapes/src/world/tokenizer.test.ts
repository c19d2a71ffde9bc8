import { InputError, initBackend, Rng } from '@t2md/core';
import { withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { COLORS, SHAPES } from './palette.js';
import { sampleScene } from './scene.js';
import { detokenize, MAX_TOKENS, PAD_ID, tokenize, tokenizeBatch, tokenizeToTensors, VOCAB, VOCAB_SIZE } from './tokenizer.js';

describe('tokenizer', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('has a fixed vocabulary built from the grammar plus <pad> and function words', () => {
    expect(VOCAB[PAD_ID]).toBe('<pad>');
    expect(new Set(VOCAB).size).toBe(VOCAB_SIZE);
    for (const w of [
      'a',
      'an',
      'and',
      'of',
      'the',
      'one',
      'four',
      'small',
      'large',
      'left',
      'right',
      'above',
      'below',
      ...COLORS,
      ...SHAPES,
      'circles',
    ]) {
      expect(VOCAB).toContain(w);
    }
  });

  it('round-trips every generated caption, padding with <pad> and masking the padding', () => {
    const rng = new Rng(99);
    let longest = 0;
    for (let i = 0; i < 2000; i++) {
      const { caption } = sampleScene(rng);
      const { ids, mask } = tokenize(caption);
      const words = caption.split(' ');
      longest = Math.max(longest, words.length);
      expect(ids.length).toBe(MAX_TOKENS);
      expect(detokenize(ids)).toBe(caption);
      expect(Array.from(mask)).toEqual(Array.from({ length: MAX_TOKENS }, (_, j) => (j < words.length ? 1 : 0)));
      expect(Array.from(ids.subarray(words.length)).every((v) => v === PAD_ID)).toBe(true);
    }
    expect(longest).toBeLessThanOrEqual(MAX_TOKENS);
  });

  it('lower-cases and strips punctuation', () => {
    expect(Array.from(tokenize('A Red, circle!').ids)).toEqual(Array.from(tokenize('a red circle').ids));
    expect(detokenize(tokenize('  Two   BLUE squares. ').ids)).toBe('two blue squares');
  });

  it('names an unknown word and lists the vocabulary', () => {
    let err: unknown;
    try {
      tokenize('a magenta circle');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/Unknown word "magenta"/);
    for (const w of VOCAB.slice(1)) expect(msg).toContain(w);
  });

  it('refuses a caption that does not fit unless asked to truncate', () => {
    const long = Array.from({ length: 20 }, () => 'circle').join(' ');
    expect(() => tokenize(long)).toThrow(/has 20 words but at most 16 fit/);
    expect(detokenize(tokenize(long, { truncate: true }).ids).split(' ').length).toBe(16);
    expect(tokenize('a circle', { maxTokens: 4 }).ids.length).toBe(4);
  });

  it('makes int32 token and bool mask tensors [B, L]', async () => {
    await withNoLeaks(async () => {
      const { tokens, mask } = tokenizeToTensors(['a red circle', 'three small blue triangles']);
      expect(tokens.shape).toEqual([2, MAX_TOKENS]);
      expect(tokens.dtype).toBe('int32');
      expect(mask.dtype).toBe('bool');
      const flat = tokenizeBatch(['a red circle', 'three small blue triangles']);
      expect(Array.from(await tokens.data())).toEqual(Array.from(flat.ids));
      expect(Array.from(await mask.data())).toEqual(Array.from(flat.mask));
      tf.dispose([tokens, mask]);
    });
  });
});
