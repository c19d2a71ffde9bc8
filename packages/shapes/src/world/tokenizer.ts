/**
 * A word-level tokenizer with a fixed vocabulary built from the grammar. Captions are lower-cased and
 * stripped of punctuation, then each word maps to its id; the ids are padded with `<pad>` (id 0) to
 * MAX_TOKENS, and a mask marks the real words. A relation is read in one form per axis ("A right of
 * B" as "B left of A", see `canonicalRelationWords`). The vocabulary order is part of the shipped
 * models' contract: append, never reorder.
 */
import { assertInt, InputError } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { canonicalRelationWords, normalizeWords } from './grammar.js';
import { COLORS, NUMBER_WORDS, SHAPE_PLURALS, SHAPES, SIZES } from './palette.js';

export const PAD = '<pad>';
export const PAD_ID = 0;

/** Every word the tokenizer knows, id = index. */
export const VOCAB: readonly string[] = Object.freeze([
  PAD,
  'a',
  'an',
  'and',
  'of',
  'the',
  ...NUMBER_WORDS.slice(1),
  ...SIZES,
  ...COLORS,
  ...SHAPES,
  ...SHAPES.map((s) => SHAPE_PLURALS[s]),
  'left',
  'right',
  'above',
  'below',
]);
export const VOCAB_SIZE = VOCAB.length;
/** Default token length: the longest generated caption has 10 words. */
export const MAX_TOKENS = 16;

const IDS = new Map(VOCAB.map((w, i) => [w, i]));

export interface TokenizeOptions {
  /** Token length (default MAX_TOKENS). */
  maxTokens?: number;
  /** Cut captions longer than maxTokens instead of throwing (default false: a cut caption means something else). */
  truncate?: boolean;
  /**
   * Rewrite "right of" and "below" into "left of" and "above" with the phrases swapped (default true:
   * the form every model since 2026-12-07 is trained on; false gives the words as written).
   */
  canonical?: boolean;
}

export interface Tokens {
  /** Word ids, padded with PAD_ID: [L]. */
  ids: Int32Array;
  /** 1 for a word, 0 for padding: [L]. */
  mask: Uint8Array;
}

/** Tokenizes one caption; an unknown word throws an InputError that names it and lists the vocabulary. */
export function tokenize(caption: string, opts: TokenizeOptions = {}): Tokens {
  const L = opts.maxTokens ?? MAX_TOKENS;
  assertInt('maxTokens', L, 1, 4096);
  if (typeof caption !== 'string') throw new InputError(`caption must be a string, got ${typeof caption}.`);
  const written = normalizeWords(caption);
  const words = opts.canonical === false ? written : canonicalRelationWords(written);
  if (words.length > L && !opts.truncate) {
    throw new InputError(`caption "${caption}" has ${words.length} words but at most ${L} fit; shorten it or pass truncate: true.`);
  }
  const ids = new Int32Array(L);
  const mask = new Uint8Array(L);
  words.slice(0, L).forEach((w, i) => {
    const id = IDS.get(w);
    if (id == null || id === PAD_ID) {
      throw new InputError(`Unknown word "${w}" in caption "${caption}"; use only these words: ${VOCAB.slice(1).join(', ')}.`);
    }
    ids[i] = id;
    mask[i] = 1;
  });
  return { ids, mask };
}

/** The words of the ids (padding dropped), joined by spaces. */
export function detokenize(ids: ArrayLike<number>): string {
  const words: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id === PAD_ID) continue;
    const w = VOCAB[id];
    if (w == null) throw new InputError(`token id ${id} is outside the vocabulary (0..${VOCAB_SIZE - 1}).`);
    words.push(w);
  }
  return words.join(' ');
}

/** Tokenizes captions into flat arrays: ids [B * L] and mask [B * L] (row-major [B, L]). */
export function tokenizeBatch(
  captions: readonly string[],
  opts: TokenizeOptions = {},
): { ids: Int32Array; mask: Uint8Array; length: number } {
  const L = opts.maxTokens ?? MAX_TOKENS;
  const ids = new Int32Array(captions.length * L);
  const mask = new Uint8Array(captions.length * L);
  captions.forEach((c, b) => {
    const t = tokenize(c, opts);
    ids.set(t.ids, b * L);
    mask.set(t.mask, b * L);
  });
  return { ids, mask, length: L };
}

/** Tokenizes captions into tensors: tokens int32 [B, L] and mask bool [B, L] (true = a word). */
export function tokenizeToTensors(captions: readonly string[], opts: TokenizeOptions = {}): { tokens: tf.Tensor2D; mask: tf.Tensor2D } {
  if (captions.length === 0) throw new InputError('captions must hold at least one caption.');
  const { ids, mask, length } = tokenizeBatch(captions, opts);
  return {
    tokens: tf.tensor2d(ids, [captions.length, length], 'int32'),
    mask: tf.tensor2d(mask, [captions.length, length], 'bool'),
  };
}
