import { InputError, initBackend, Rng } from '@t2md/core';
import { withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkImageData } from './checker.js';
import { canonicalRelationWords, parseCaption } from './grammar.js';
import { COLORS, SHAPES } from './palette.js';
import { renderScene } from './render.js';
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
      const { ids, mask } = tokenize(caption, { canonical: false });
      const words = caption.split(' ');
      longest = Math.max(longest, words.length);
      expect(ids.length).toBe(MAX_TOKENS);
      expect(detokenize(ids)).toBe(caption);
      expect(Array.from(mask)).toEqual(Array.from({ length: MAX_TOKENS }, (_, j) => (j < words.length ? 1 : 0)));
      expect(Array.from(ids.subarray(words.length)).every((v) => v === PAD_ID)).toBe(true);
    }
    expect(longest).toBeLessThanOrEqual(MAX_TOKENS);
  });

  it('reads a relation in one form per axis: the first phrase goes left or up', () => {
    const ids = (c: string, canonical?: boolean) => Array.from(tokenize(c, { canonical }).ids);
    expect(detokenize(tokenize('a red circle right of two blue squares').ids)).toBe('two blue squares left of a red circle');
    expect(detokenize(tokenize('Three small triangles below a green square.').ids)).toBe('a green square above three small triangles');
    for (const c of ['a red circle left of a blue square', 'a circle above a square', 'a circle and a square', 'two red circles']) {
      expect(ids(c)).toEqual(ids(c, false));
    }
    expect(detokenize(tokenize('a circle right of a square', { canonical: false }).ids)).toBe('a circle right of a square');
    // Not one relation with words on both sides: left as written.
    for (const c of ['right of a square', 'a circle below', 'a circle below a square below a triangle', 'a right of a below b']) {
      expect(canonicalRelationWords(c.split(' '))).toEqual(c.split(' '));
    }
    expect(canonicalRelationWords(['right', 'circle'])).toEqual(['right', 'circle']);
  });

  it('gives a scene the same tokens as its mirrored caption, and the scene makes that caption true', () => {
    const rng = new Rng(5);
    let swapped = 0;
    for (let i = 0; i < 400; i++) {
      const scene = sampleScene(rng, 'position');
      const canonical = detokenize(tokenize(scene.caption).ids);
      const parsed = parseCaption(canonical);
      expect(['left of', 'above']).toContain(parsed.relation);
      expect(checkImageData(renderScene(scene, 32), canonical).correct).toBe(true);
      if (canonical !== scene.caption) swapped++;
    }
    expect(swapped).toBeGreaterThan(100);
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
