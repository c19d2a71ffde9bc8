/**
 * A seeded, resumable stream of (image, caption) batches. Item i is drawn from its own generator,
 * hashed from (seed, i) (see seeds.ts), so the stream does not depend on the batch size, any item can
 * be regenerated on its own, and the whole position is one integer: `state` is `{seed, index}`, and
 * a dataset created with that state continues exactly where the saved one stopped.
 */
import { assertInt, InputError } from '@t2md/core';
import type * as tf from '@tensorflow/tfjs-core';
import { CATEGORIES, type Category } from './palette.js';
import { checkResolution, renderBatch } from './render.js';
import { type Scene, sampleScene } from './scene.js';
import { indexedRng } from './seeds.js';
import { MAX_TOKENS, tokenizeToTensors } from './tokenizer.js';

/** The saved position of a dataset (JSON-serialisable). */
export interface DatasetState {
  seed: number;
  /** Index of the next item. */
  index: number;
}

export interface DatasetOptions {
  seed: number;
  /** Image side in pixels (square images). */
  resolution: number;
  batchSize: number;
  /** Categories to draw from, uniformly (default: all six). */
  categories?: readonly Category[];
  /**
   * Relative weights of those categories, integers in [0, 100] (unnamed ones weigh 1; 0 leaves one
   * out): `{position: 2}` draws position scenes twice as often as each other category. Without it the
   * draw is uniform, and a mix of equal weights gives the very same stream.
   */
  mix?: Readonly<Partial<Record<Category, number>>>;
  /** Token length (default MAX_TOKENS). */
  maxTokens?: number;
  /** Resume from a saved state (its seed must equal `seed`). */
  state?: DatasetState;
}

/** One batch; the caller owns (and disposes) the tensors. */
export interface Batch {
  /** Images in [-1, 1]: float32 [B, 3, H, W]. */
  images: tf.Tensor4D;
  /** Caption word ids: int32 [B, L]. */
  tokens: tf.Tensor2D;
  /** true for words, false for padding: bool [B, L]. */
  mask: tf.Tensor2D;
  captions: string[];
  scenes: Scene[];
}

export interface Dataset {
  readonly resolution: number;
  readonly batchSize: number;
  readonly categories: readonly Category[];
  /** The category weights (see DatasetOptions.mix), or undefined for a uniform draw. */
  readonly mix: Readonly<Partial<Record<Category, number>>> | undefined;
  /** The position to save for an exact resume (a copy). */
  readonly state: DatasetState;
  /** The next batch; `resolution` overrides the image size for this batch only (mixed-resolution training). */
  next(opts?: { resolution?: number }): Batch;
  /** The next batch's scenes without rendering (advances the position like `next`). */
  nextScenes(): Scene[];
  /** Moves to a saved position. */
  restore(state: DatasetState): void;
}

/**
 * Item `index` of the stream with this seed and categories. A category listed k times is drawn k times as
 * often (how `mix` is carried out: one integer draw either way, so equal weights change nothing).
 */
export function datasetItem(seed: number, index: number, categories: readonly Category[] = CATEGORIES): Scene {
  const rng = indexedRng(seed, index);
  const category = categories.length === 1 ? categories[0] : categories[rng.int(categories.length)];
  return sampleScene(rng, category);
}

/** Creates a seeded dataset iterator (see the module comment). */
export function createDataset(opts: DatasetOptions): Dataset {
  if (opts == null || typeof opts !== 'object') throw new InputError('createDataset needs options {seed, resolution, batchSize}.');
  const { seed, resolution, batchSize } = opts;
  assertInt('seed', seed, 0);
  checkResolution('resolution', resolution);
  assertInt('batchSize', batchSize, 1, 65536);
  const maxTokens = opts.maxTokens ?? MAX_TOKENS;
  assertInt('maxTokens', maxTokens, 1, 4096);
  const categories = [...(opts.categories ?? CATEGORIES)];
  if (categories.length === 0) throw new InputError(`categories must name at least one of ${CATEGORIES.join(', ')}.`);
  for (const c of categories) {
    if (!(CATEGORIES as readonly string[]).includes(c)) {
      throw new InputError(`categories has ${JSON.stringify(c)}, which is not one of ${CATEGORIES.join(', ')}.`);
    }
  }
  const draw = mixedCategories(categories, opts.mix);
  const mix = opts.mix == null ? undefined : Object.freeze({ ...opts.mix });
  let index = 0;
  const restore = (state: DatasetState) => {
    if (state == null || typeof state !== 'object') throw new InputError('dataset state must be {seed, index}.');
    assertInt('state.index', state.index, 0);
    if (state.seed !== seed) {
      throw new InputError(
        `dataset state has seed ${state.seed} but the dataset was created with seed ${seed}; create it with the saved seed.`,
      );
    }
    index = state.index;
  };
  if (opts.state != null) restore(opts.state);
  const nextScenes = (): Scene[] => {
    const scenes = Array.from({ length: batchSize }, (_, b) => datasetItem(seed, index + b, draw));
    index += batchSize;
    return scenes;
  };
  return {
    resolution,
    batchSize,
    categories,
    mix,
    get state() {
      return { seed, index };
    },
    nextScenes,
    restore,
    next(nextOpts = {}) {
      const res = nextOpts.resolution ?? resolution;
      checkResolution('resolution', res);
      const scenes = nextScenes();
      const captions = scenes.map((s) => s.caption);
      const images = renderBatch(scenes, res);
      const { tokens, mask } = tokenizeToTensors(captions, { maxTokens });
      return { images, tokens, mask, captions, scenes };
    },
  };
}

/** `categories` with each one repeated by its weight in `mix` (divided by the weights' common factor). */
function mixedCategories(categories: readonly Category[], mix: Partial<Record<Category, number>> | undefined): Category[] {
  if (mix == null) return [...categories];
  if (typeof mix !== 'object' || Array.isArray(mix)) throw new InputError('mix must be an object of category weights, e.g. {position: 2}.');
  for (const [c, w] of Object.entries(mix)) {
    if (!(categories as readonly string[]).includes(c)) {
      throw new InputError(`mix names ${JSON.stringify(c)}, which is not one of the categories drawn (${categories.join(', ')}).`);
    }
    assertInt(`mix.${c}`, w, 0, 100);
  }
  const weights = categories.map((c) => mix[c] ?? 1);
  if (weights.every((w) => w === 0)) throw new InputError('mix gives every category weight 0; give at least one a positive weight.');
  const g = weights.reduce(gcd);
  return categories.flatMap((c, i) => Array<Category>(weights[i] / g).fill(c));
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
