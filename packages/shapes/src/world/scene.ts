/**
 * Random scenes: a caption, its category and the objects that make it true, placed without overlap,
 * inside the canvas and, for `position` prompts, with the relation holding by a clear margin.
 */
import { InputError, type Rng } from '@t2md/core';
import { boxGap, crossStrength, halfHeight, relationStrength, shapeBox } from './geometry.js';
import { categoryOf, formatCaption, formatPhrase, type ParsedPrompt, type Phrase } from './grammar.js';
import {
  CATEGORIES,
  type Category,
  COLORS,
  type ColorName,
  RELATIONS,
  SHAPES,
  type Shape,
  SIZE_RANGES,
  SIZES,
  type Size,
} from './palette.js';

/** One object of a scene; cx, cy, r in normalised units (r = half-width, see geometry.ts). */
export interface SceneObject {
  shape: Shape;
  color: ColorName;
  size: Size;
  cx: number;
  cy: number;
  r: number;
}

/** A caption with the objects that make it true. */
export interface Scene {
  caption: string;
  category: Category;
  prompt: ParsedPrompt;
  objects: SceneObject[];
}

/** Clearance kept from the canvas edge, normalised. */
export const EDGE_MARGIN = 0.03;
/** Minimum clearance between two objects' bounding boxes, normalised (about 2 px at 32 px). */
export const MIN_GAP = 0.07;
/** A generated position scene has relation strength at least this (the checker needs > 0.5) ... */
export const RELATION_MARGIN = 0.7;
/** ... and strength at most this on the other axis, so no second relation holds. */
export const CROSS_LIMIT = 0.3;

/** Chance that a phrase states its size; otherwise the size class is random and unstated. */
const P_SIZE = 0.25;
/** Chance that a counting or position caption states colours. */
const P_COLOR = 0.5;
/** Chance that a count-1 phrase is written 'one' rather than 'a'/'an' (so 'one' is seen in training). */
const P_ONE = 0.1;

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

/** Two distinct items of xs. */
function pickTwo<T>(rng: Rng, xs: readonly T[]): [T, T] {
  const a = rng.int(xs.length);
  const b = (a + 1 + rng.int(xs.length - 1)) % xs.length;
  return [xs[a], xs[b]];
}

function maybeSize(rng: Rng): Size | undefined {
  return rng.next() < P_SIZE ? pick(rng, SIZES) : undefined;
}

function phraseOf(count: number, shape: Shape, color?: ColorName, size?: Size): Phrase {
  const p: Phrase = { count, shape };
  if (color != null) p.color = color;
  if (size != null) p.size = size;
  return p;
}

/** Draws the phrases (and relation) of a random prompt in `category`. */
function samplePrompt(rng: Rng, category: Category): { phrases: Phrase[]; relation?: Relation } {
  switch (category) {
    case 'singleObject':
      return { phrases: [phraseOf(1, pick(rng, SHAPES), undefined, maybeSize(rng))] };
    case 'colors':
      return { phrases: [phraseOf(1, pick(rng, SHAPES), pick(rng, COLORS), maybeSize(rng))] };
    case 'counting': {
      const count = 2 + rng.int(3);
      const color = rng.next() < P_COLOR ? pick(rng, COLORS) : undefined;
      return { phrases: [phraseOf(count, pick(rng, SHAPES), color, maybeSize(rng))] };
    }
    case 'twoObjects': {
      const [a, b] = pickTwo(rng, SHAPES);
      return { phrases: [phraseOf(1, a, undefined, maybeSize(rng)), phraseOf(1, b, undefined, maybeSize(rng))] };
    }
    case 'colorAttribution': {
      // Distinct shapes and distinct colours, so swapping the colours makes a different (wrong) image.
      const [a, b] = pickTwo(rng, SHAPES);
      const [ca, cb] = pickTwo(rng, COLORS);
      return { phrases: [phraseOf(1, a, ca, maybeSize(rng)), phraseOf(1, b, cb, maybeSize(rng))] };
    }
    case 'position': {
      const relation = pick(rng, RELATIONS);
      if (rng.next() < P_COLOR) {
        // Colours stated: the two objects differ in colour (shapes may repeat).
        const [ca, cb] = pickTwo(rng, COLORS);
        const a = phraseOf(1, pick(rng, SHAPES), ca, maybeSize(rng));
        const b = phraseOf(1, pick(rng, SHAPES), cb, maybeSize(rng));
        return { phrases: [a, b], relation };
      }
      const [a, b] = pickTwo(rng, SHAPES);
      return { phrases: [phraseOf(1, a, undefined, maybeSize(rng)), phraseOf(1, b, undefined, maybeSize(rng))], relation };
    }
  }
}

type Relation = (typeof RELATIONS)[number];

/** Draws a half-width for the size class (a random class when none is given). */
function sampleRadius(rng: Rng, size: Size): number {
  const [lo, hi] = SIZE_RANGES[size];
  return lo + (hi - lo) * rng.next();
}

/** Places objects (shape, size and r already drawn) so every pair keeps MIN_GAP and all stay inside. */
function place(rng: Rng, items: Omit<SceneObject, 'cx' | 'cy'>[], relation?: Relation): SceneObject[] | null {
  const placed: SceneObject[] = [];
  for (const it of items) {
    const hh = halfHeight(it.shape, it.r);
    let ok = false;
    for (let attempt = 0; attempt < 64 && !ok; attempt++) {
      const lo = EDGE_MARGIN + it.r;
      const cx = lo + (1 - 2 * lo) * rng.next();
      const loy = EDGE_MARGIN + hh;
      const cy = loy + (1 - 2 * loy) * rng.next();
      const box = shapeBox(it.shape, cx, cy, it.r);
      if (placed.some((o) => boxGap(box, shapeBox(o.shape, o.cx, o.cy, o.r)) < MIN_GAP)) continue;
      if (relation != null && placed.length === 1) {
        // This is phrase B; phrase A (placed[0]) must stand in `relation` to it.
        const a = shapeBox(placed[0].shape, placed[0].cx, placed[0].cy, placed[0].r);
        if (relationStrength(a, box, relation) < RELATION_MARGIN || crossStrength(a, box, relation) > CROSS_LIMIT) continue;
      }
      placed.push({ ...it, cx, cy });
      ok = true;
    }
    if (!ok) return null;
  }
  return placed;
}

/**
 * Draws a random scene: a caption in `category` (a random category when omitted) and objects that
 * satisfy it. Deterministic given the Rng's state; advances the Rng.
 */
export function sampleScene(rng: Rng, category?: Category): Scene {
  const cat = category ?? pick(rng, CATEGORIES);
  if (!(CATEGORIES as readonly string[]).includes(cat)) {
    throw new InputError(`category must be one of ${CATEGORIES.join(', ')}, got ${JSON.stringify(cat)}.`);
  }
  const { phrases, relation } = samplePrompt(rng, cat);
  const prompt: ParsedPrompt = { category: categoryOf(phrases, relation), phrases };
  if (relation != null) prompt.relation = relation;
  let caption = formatCaption(prompt);
  if (phrases.length === 1 && phrases[0].count === 1 && rng.next() < P_ONE) caption = formatPhrase(phrases[0], true);
  // Placement is rejection sampling; a failed layout redraws the radii (never the caption). Four large
  // objects fit with room to spare, so a few rounds suffice; the bound only guards against a bug.
  for (let round = 0; round < 1000; round++) {
    const items: Omit<SceneObject, 'cx' | 'cy'>[] = [];
    for (const p of phrases) {
      const size = p.size ?? pick(rng, SIZES);
      for (let k = 0; k < p.count; k++) {
        items.push({ shape: p.shape, color: p.color ?? pick(rng, COLORS), size, r: sampleRadius(rng, size) });
      }
    }
    const objects = place(rng, items, relation);
    if (objects != null) return { caption, category: prompt.category, prompt, objects };
  }
  throw new Error(`sampleScene: could not place "${caption}" (a bug: layouts should always fit).`);
}
