/**
 * The caption grammar of the shapes world, its parser and its printer.
 *
 *   caption  := phrase | phrase 'and' phrase | phrase relation phrase
 *   phrase   := count [size] [colour] shape        (plural shape when count > 1)
 *   count    := 'a' | 'an' | 'one' | 'two' | 'three' | 'four'
 *   relation := 'left of' | 'right of' | 'above' | 'below'
 *
 * The category follows from the caption alone, as in GenEval (whose single-object, two-object and
 * counting prompts name no colour):
 *   one phrase, count > 1           -> counting          ("three triangles", "two red squares")
 *   one phrase with a colour        -> colors            ("a red circle")
 *   one phrase without a colour     -> singleObject      ("a circle", "a small square")
 *   two phrases with a relation     -> position          ("a red circle left of a blue square")
 *   two phrases, 'and', any colour  -> colorAttribution  ("a red circle and a green square")
 *   two phrases, 'and', no colour   -> twoObjects        ("a circle and a square")
 */
import { InputError } from '@t2md/core';
import {
  type Category,
  COLORS,
  type ColorName,
  MAX_COUNT,
  NUMBER_WORDS,
  RELATIONS,
  type Relation,
  SHAPE_PLURALS,
  SHAPES,
  type Shape,
  SIZES,
  type Size,
} from './palette.js';

/** One noun phrase of a caption: `count` objects of `shape`, with an optional colour and size. */
export interface Phrase {
  count: number;
  shape: Shape;
  color?: ColorName;
  size?: Size;
}

/** A parsed caption: one or two phrases, and for two phrases either 'and' or a relation. */
export interface ParsedPrompt {
  category: Category;
  phrases: Phrase[];
  /** Set for `position` prompts: phrases[0] stands in this relation to phrases[1]. */
  relation?: Relation;
}

/** The category of a prompt with these phrases and relation (see the module comment). */
export function categoryOf(phrases: readonly Phrase[], relation?: Relation): Category {
  if (phrases.length === 1) {
    if (phrases[0].count > 1) return 'counting';
    return phrases[0].color != null ? 'colors' : 'singleObject';
  }
  if (relation != null) return 'position';
  return phrases.some((p) => p.color != null) ? 'colorAttribution' : 'twoObjects';
}

/** Lower-cases, strips punctuation and splits on whitespace (the tokenizer's normalisation too). */
export function normalizeWords(caption: string): string[] {
  return caption
    .toLowerCase()
    .replace(/[^a-z0-9<>\s]/g, ' ')
    .split(/\s+/)
    .filter((w) => w.length > 0);
}

/**
 * One spoken form per axis: "A right of B" becomes "B left of A" and "A below B" becomes "B above A"
 * (on words as `normalizeWords` gives them; words without exactly one such relation, with words on both
 * sides of it, come back unchanged). The tokenizer applies it, so every model reads a relation this way.
 *
 * Why: with both forms in the data, the side the first phrase's objects go to is the product of word
 * order and relation word, and neither alone says anything about it. A caption encoder trained from
 * scratch did not find that product in millions of position scenes: the 2026-12-07 teachers drew both
 * objects' centres within 1 px of each other at high noise, for either relation, and position stayed at
 * chance (0.26). In one form, word order alone says the side (the first phrase goes left or up).
 */
export function canonicalRelationWords(words: readonly string[]): string[] {
  const at: number[] = [];
  words.forEach((w, i) => {
    if (w === 'below' || (w === 'right' && words[i + 1] === 'of')) at.push(i);
  });
  const hasOther = words.some((w, i) => w === 'above' || (w === 'left' && words[i + 1] === 'of'));
  if (at.length !== 1 || hasOther) return [...words];
  const i = at[0];
  const width = words[i] === 'below' ? 1 : 2;
  const before = words.slice(0, i);
  const after = words.slice(i + width);
  if (before.length === 0 || after.length === 0) return [...words];
  return [...after, ...(width === 1 ? ['above'] : ['left', 'of']), ...before];
}

const PLURAL_TO_SHAPE = new Map<string, Shape>(SHAPES.map((s) => [SHAPE_PLURALS[s], s]));

function parseError(caption: string, why: string): InputError {
  return new InputError(
    `Cannot parse caption "${caption}": ${why}; write e.g. "a red circle", "three small triangles", ` +
      `"a circle and a square" or "a blue square left of a yellow triangle".`,
  );
}

/** Parses a caption of the grammar above; throws an InputError saying where it went wrong. */
export function parseCaption(caption: string): ParsedPrompt {
  if (typeof caption !== 'string') throw new InputError(`caption must be a string, got ${typeof caption}.`);
  const words = normalizeWords(caption);
  let i = 0;
  const phrase = (): Phrase => {
    const w = words[i];
    let count: number;
    if (w === 'a' || w === 'an') count = 1;
    else if (w !== '' && (NUMBER_WORDS as readonly string[]).includes(w)) count = (NUMBER_WORDS as readonly string[]).indexOf(w);
    else throw parseError(caption, `expected a count ('a', 'one' ... 'four') at "${w ?? '<end>'}"`);
    i++;
    let size: Size | undefined;
    let color: ColorName | undefined;
    if ((SIZES as readonly string[]).includes(words[i])) size = words[i++] as Size;
    if ((COLORS as readonly string[]).includes(words[i])) color = words[i++] as ColorName;
    const noun = words[i];
    let shape: Shape | undefined;
    if (count === 1 && (SHAPES as readonly string[]).includes(noun)) shape = noun as Shape;
    if (count > 1) shape = PLURAL_TO_SHAPE.get(noun);
    if (shape == null) {
      const want = count === 1 ? SHAPES.join(', ') : SHAPES.map((s) => SHAPE_PLURALS[s]).join(', ');
      throw parseError(caption, `expected a shape (${want}) at "${noun ?? '<end>'}"`);
    }
    i++;
    const p: Phrase = { count, shape };
    if (color != null) p.color = color;
    if (size != null) p.size = size;
    return p;
  };
  if (words.length === 0) throw parseError(caption, 'it is empty');
  const phrases = [phrase()];
  let relation: Relation | undefined;
  if (i < words.length) {
    if (words[i] === 'and') i++;
    else if (words[i] === 'above' || words[i] === 'below') relation = words[i++] as Relation;
    else if ((words[i] === 'left' || words[i] === 'right') && words[i + 1] === 'of') {
      relation = `${words[i]} of` as Relation;
      i += 2;
    } else throw parseError(caption, `expected 'and' or a relation (${RELATIONS.join(', ')}) at "${words[i]}"`);
    phrases.push(phrase());
  }
  if (i < words.length) throw parseError(caption, `unexpected "${words.slice(i).join(' ')}" after the last shape`);
  const out: ParsedPrompt = { category: categoryOf(phrases, relation), phrases };
  if (relation != null) out.relation = relation;
  return out;
}

/** The article for a singular phrase ('an' before a vowel sound). */
function article(next: string): string {
  return /^[aeiou]/.test(next) ? 'an' : 'a';
}

/** Writes one phrase; `useOne` writes count 1 as 'one' instead of 'a'/'an'. */
export function formatPhrase(p: Phrase, useOne = false): string {
  const rest = [p.size, p.color, p.count === 1 ? p.shape : SHAPE_PLURALS[p.shape]].filter((w) => w != null) as string[];
  const count = p.count === 1 ? (useOne ? 'one' : article(rest[0])) : NUMBER_WORDS[p.count];
  return [count, ...rest].join(' ');
}

/** Writes a parsed prompt back as a caption (the inverse of parseCaption, up to 'a'/'one'). */
export function formatCaption(prompt: Pick<ParsedPrompt, 'phrases' | 'relation'>): string {
  const { phrases, relation } = prompt;
  if (phrases.length === 1) return formatPhrase(phrases[0]);
  return `${formatPhrase(phrases[0])} ${relation ?? 'and'} ${formatPhrase(phrases[1])}`;
}

/** Checks a parsed prompt's fields (for prompts built by hand rather than parsed). */
export function validatePrompt(prompt: ParsedPrompt): ParsedPrompt {
  const bad = (why: string) => new InputError(`prompt is not valid: ${why}; build it with parseCaption("a red circle").`);
  if (prompt == null || !Array.isArray(prompt.phrases)) throw bad('it needs a phrases array');
  if (prompt.phrases.length < 1 || prompt.phrases.length > 2) throw bad(`it has ${prompt.phrases.length} phrases, 1 or 2 are allowed`);
  for (const p of prompt.phrases) {
    if (!(SHAPES as readonly string[]).includes(p.shape)) throw bad(`shape ${JSON.stringify(p.shape)} is not one of ${SHAPES.join(', ')}`);
    if (!Number.isInteger(p.count) || p.count < 1 || p.count > MAX_COUNT) throw bad(`count ${p.count} is not in 1..${MAX_COUNT}`);
    if (p.color != null && !(COLORS as readonly string[]).includes(p.color)) throw bad(`colour ${JSON.stringify(p.color)} is unknown`);
    if (p.size != null && !(SIZES as readonly string[]).includes(p.size)) throw bad(`size ${JSON.stringify(p.size)} is unknown`);
  }
  if (prompt.relation != null && !(RELATIONS as readonly string[]).includes(prompt.relation)) {
    throw bad(`relation ${JSON.stringify(prompt.relation)} is not one of ${RELATIONS.join(', ')}`);
  }
  if (prompt.relation != null && prompt.phrases.length !== 2) throw bad('a relation needs two phrases');
  const category = categoryOf(prompt.phrases, prompt.relation);
  if (prompt.category !== category) throw bad(`its category is ${category}, not ${prompt.category}`);
  return prompt;
}
