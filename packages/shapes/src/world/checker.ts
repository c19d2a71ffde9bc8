/**
 * The GenEval-style checker: does an image show what its caption says? Objects are found by
 * `detectObjects` (colour segmentation + shape templates); the rules follow GenEval's:
 *
 * - every phrase needs at least `count` matching objects (shape, and colour / size when the phrase
 *   states them); a `counting` prompt needs exactly `count` (GenEval excludes count + 1);
 * - `position`: some object of the first phrase stands in the relation to some object of the second
 *   (every pair must, when a phrase has count > 1), by GenEval's rule: the centre offset, shrunk by
 *   0.1 x the boxes' sizes per axis and divided by its length, exceeds 0.5 along the relation's axis;
 * - objects the caption does not mention do not make an image wrong (as in GenEval).
 *
 * Supported resolutions: 16 px and up (tested >= 99% on ground-truth renders at 16, 32, 64, 128 and
 * 256; images above 64 px are area-averaged to 64 px before detection, see segment.ts).
 * The score of a set is the mean over categories of the per-category accuracy (GenEval's "overall").
 */
import { assertInt, InputError } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { relationHolds } from './geometry.js';
import { type ParsedPrompt, type Phrase, parseCaption, validatePrompt } from './grammar.js';
import { CATEGORIES, type Category } from './palette.js';
import { checkResolution } from './render.js';
import { type Scene, sampleScene } from './scene.js';
import { indexedRng } from './seeds.js';
import { type DetectedObject, detectedBox, detectObjects } from './segment.js';

/** Resolutions at which the checker is tested to be >= 99% correct on ground-truth renders. */
export const SUPPORTED_RESOLUTIONS = [16, 32, 64, 128, 256] as const;
/**
 * Smallest image the checker accepts. At 12 px it is right on only about 89% of renders (a small
 * triangle is 2 px wide), so it refuses rather than score unreliably.
 */
export const CHECKER_MIN_RESOLUTION = 16;

/** An evaluation prompt: a caption and its category. */
export interface Prompt {
  caption: string;
  category: Category;
}

/** What the checker accepts as a target: a caption, a parsed prompt or a {caption} object. */
export type CheckTarget = string | ParsedPrompt | { caption: string; category?: Category };

export interface CheckResult {
  correct: boolean;
  category: Category;
  details: {
    caption?: string;
    /** Why the image is wrong (empty when correct). */
    reasons: string[];
    /** Everything the detector found. */
    detected: DetectedObject[];
  };
}

/** Turns a check target into a validated ParsedPrompt. */
export function toPrompt(target: CheckTarget): { prompt: ParsedPrompt; caption?: string } {
  if (typeof target === 'string') return { prompt: parseCaption(target), caption: target };
  if (target != null && typeof (target as { caption?: unknown }).caption === 'string') {
    const t = target as { caption: string; category?: Category };
    const prompt = parseCaption(t.caption);
    if (t.category != null && t.category !== prompt.category) {
      throw new InputError(`prompt "${t.caption}" is a ${prompt.category} caption, but its category says ${t.category}; fix the category.`);
    }
    return { prompt, caption: t.caption };
  }
  return { prompt: validatePrompt(target as ParsedPrompt) };
}

function matches(o: DetectedObject, p: Phrase): boolean {
  return o.shape === p.shape && (p.color == null || o.color === p.color) && (p.size == null || o.size === p.size);
}

function describe(p: Phrase): string {
  return [p.size, p.color, p.shape].filter((w) => w != null).join(' ');
}

/** Judges detected objects against a parsed prompt (the part of the checker after detection). */
export function judge(detected: DetectedObject[], prompt: ParsedPrompt): string[] {
  const reasons: string[] = [];
  const found = prompt.phrases.map((p) => detected.filter((o) => matches(o, p)));
  prompt.phrases.forEach((p, i) => {
    const k = found[i].length;
    if (prompt.category === 'counting' ? k !== p.count : k < p.count) {
      reasons.push(`expected ${prompt.category === 'counting' ? '' : '>= '}${p.count} ${describe(p)}, found ${k}`);
    }
  });
  if (reasons.length === 0 && prompt.relation != null) {
    const [as, bs] = found;
    const rel = prompt.relation;
    const single = prompt.phrases[0].count === 1 && prompt.phrases[1].count === 1;
    const pairs = as.flatMap((a) => bs.filter((b) => b !== a).map((b) => relationHolds(detectedBox(a), detectedBox(b), rel)));
    const ok = pairs.length > 0 && (single ? pairs.some((x) => x) : pairs.every((x) => x));
    if (!ok) reasons.push(`${describe(prompt.phrases[0])} is not ${rel} ${describe(prompt.phrases[1])}`);
  }
  return reasons;
}

/** Side of a square CHW image with `length` values, or an InputError. */
function sideOf(length: number): number {
  const side = Math.round(Math.sqrt(length / 3));
  if (3 * side * side !== length) {
    throw new InputError(
      `image has ${length} values, which is not 3 x H x H for a square image; pass a CHW Float32Array of a square image.`,
    );
  }
  return side;
}

/** Checks a CHW Float32Array image (values in [-1, 1]) against a caption; synchronous. */
export function checkImageData(data: Float32Array, target: CheckTarget, resolution = sideOf(data.length)): CheckResult {
  checkResolution('resolution', resolution);
  if (resolution < CHECKER_MIN_RESOLUTION) {
    throw new InputError(
      `the checker needs images of at least ${CHECKER_MIN_RESOLUTION} px, got ${resolution} px; sample at a larger size.`,
    );
  }
  if (!(data instanceof Float32Array) || data.length !== 3 * resolution * resolution) {
    throw new InputError(`image must be a Float32Array of 3 x ${resolution} x ${resolution} values.`);
  }
  const { prompt, caption } = toPrompt(target);
  const detected = detectObjects(data, resolution);
  const reasons = judge(detected, prompt);
  const details: CheckResult['details'] = { reasons, detected };
  if (caption != null) details.caption = caption;
  return { correct: reasons.length === 0, category: prompt.category, details };
}

/** Reads one image: a CHW Float32Array, or a tensor [3, H, W] / [1, 3, H, W] with H = W. */
async function imageData(image: Float32Array | tf.Tensor, name: string): Promise<Float32Array> {
  if (image instanceof Float32Array) return image;
  if (image == null || !(image instanceof tf.Tensor)) throw new InputError(`${name} must be a Float32Array or a tf.Tensor.`);
  const s = image.shape;
  const ok = (s.length === 3 && s[0] === 3 && s[1] === s[2]) || (s.length === 4 && s[0] === 1 && s[1] === 3 && s[2] === s[3]);
  if (!ok) throw new InputError(`${name} must have shape [3, H, H] or [1, 3, H, H], got [${s.join(', ')}].`);
  if (image.dtype === 'float32') return (await image.data()) as Float32Array;
  const cast = tf.cast(image, 'float32');
  try {
    return (await cast.data()) as Float32Array;
  } finally {
    cast.dispose();
  }
}

/** Checks one image (CHW Float32Array in [-1, 1], or a tensor [3, H, W] / [1, 3, H, W]) against a caption. */
export async function checkImage(image: Float32Array | tf.Tensor, target: CheckTarget): Promise<CheckResult> {
  const data = await imageData(image, 'image');
  return checkImageData(data, target);
}

export interface EvalResult {
  /** Mean over the categories present of the per-category accuracy. */
  overall: number;
  /** Accuracy per category; null for a category with no prompts. */
  categories: Record<Category, number | null>;
  /** Prompts per category. */
  counts: Record<Category, number>;
  results: CheckResult[];
}

/**
 * Scores images against prompts. `images` is a tensor [B, 3, H, W] or a list of CHW Float32Arrays /
 * tensors; `prompts` has one entry per image.
 */
export async function evaluate(
  images: tf.Tensor | readonly (Float32Array | tf.Tensor)[],
  prompts: readonly CheckTarget[],
): Promise<EvalResult> {
  let list: Float32Array[];
  if (images instanceof tf.Tensor) {
    const s = images.shape;
    if (s.length !== 4 || s[1] !== 3 || s[2] !== s[3]) throw new InputError(`images must have shape [B, 3, H, H], got [${s.join(', ')}].`);
    if (images.dtype !== 'float32')
      throw new InputError(`images must be float32, got ${images.dtype}; cast with tf.cast(images, 'float32').`);
    const all = (await images.data()) as Float32Array;
    const per = 3 * s[2] * s[3];
    list = Array.from({ length: s[0] }, (_, b) => all.subarray(b * per, (b + 1) * per));
  } else {
    list = await Promise.all(images.map((img, i) => imageData(img, `images[${i}]`)));
  }
  if (list.length !== prompts.length) {
    throw new InputError(`evaluate got ${list.length} images but ${prompts.length} prompts; pass one prompt per image.`);
  }
  const results = list.map((img, i) => checkImageData(img, prompts[i]));
  const right = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  const counts = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  for (const r of results) {
    counts[r.category]++;
    if (r.correct) right[r.category]++;
  }
  const categories = Object.fromEntries(CATEGORIES.map((c) => [c, counts[c] > 0 ? right[c] / counts[c] : null])) as Record<
    Category,
    number | null
  >;
  const present = CATEGORIES.filter((c) => counts[c] > 0);
  const overall = present.length > 0 ? present.reduce((s, c) => s + (categories[c] as number), 0) / present.length : 0;
  return { overall, categories, counts, results };
}

/** Stream id that keeps evaluation prompts apart from the training stream of the same seed. */
const EVAL_STREAM = 0x6576616c; // 'eval'

/**
 * `n` evaluation prompts, balanced over the six categories (prompt i has category i mod 6),
 * deterministic in `seed`.
 */
export function evalPrompts(n: number, seed = 0): Prompt[] {
  return evalScenes(n, seed).map((s) => ({ caption: s.caption, category: s.category }));
}

/** The scenes behind `evalPrompts(n, seed)` (their ground-truth objects, e.g. to render references). */
export function evalScenes(n: number, seed = 0): Scene[] {
  assertInt('n (the number of prompts)', n, 1);
  assertInt('seed', seed, 0);
  return Array.from({ length: n }, (_, i) => sampleScene(indexedRng(seed, i, EVAL_STREAM), CATEGORIES[i % CATEGORIES.length]));
}
