/**
 * The vocabulary of the shapes world: shapes, colours, sizes, relations and the background.
 * The order of every list here is part of the shipped models' contract (token ids, colour ids):
 * append, never reorder.
 */

export const SHAPES = ['circle', 'square', 'triangle'] as const;
export type Shape = (typeof SHAPES)[number];

/** Plural forms, in the order of SHAPES. */
export const SHAPE_PLURALS: Readonly<Record<Shape, string>> = { circle: 'circles', square: 'squares', triangle: 'triangles' };

export const COLORS = ['red', 'orange', 'yellow', 'green', 'blue', 'purple', 'white'] as const;
export type ColorName = (typeof COLORS)[number];

/**
 * Colours as RGB in [0, 1]. Chosen far apart in hue and far from the background; what the checker
 * separates is the *direction* from the background to the colour (an anti-aliased edge pixel is a
 * mix of the two), and the closest pair of directions (orange, yellow) is about 22 degrees apart.
 */
export const PALETTE: Readonly<Record<ColorName, readonly [number, number, number]>> = {
  red: [0.92, 0.12, 0.12],
  orange: [1.0, 0.52, 0.02],
  yellow: [0.96, 0.92, 0.1],
  green: [0.12, 0.78, 0.2],
  blue: [0.15, 0.3, 0.95],
  purple: [0.62, 0.18, 0.88],
  white: [0.95, 0.95, 0.95],
};

/** The background: a plain dark neutral grey, RGB in [0, 1] (-0.76 in the model's [-1, 1] range). */
export const BACKGROUND: readonly [number, number, number] = [0.12, 0.12, 0.12];

export const SIZES = ['small', 'large'] as const;
export type Size = (typeof SIZES)[number];

/**
 * Half-width `r` of an object, in normalised canvas units ([0, 1] spans the image), per size class.
 * A gap between the classes lets the checker tell them apart at SIZE_THRESHOLD. The smallest object
 * (a small triangle) is still about 5 px wide at 32 px, the smallest supported resolution.
 */
export const SIZE_RANGES: Readonly<Record<Size, readonly [number, number]>> = {
  small: [0.08, 0.11],
  large: [0.14, 0.17],
};

/** A detected object with half-width below this is 'small', else 'large'. */
export const SIZE_THRESHOLD = 0.125;

export const RELATIONS = ['left of', 'right of', 'above', 'below'] as const;
export type Relation = (typeof RELATIONS)[number];

/** The evaluation categories, named as in the contract (they mirror GenEval's tags). */
export const CATEGORIES = ['singleObject', 'twoObjects', 'counting', 'colors', 'position', 'colorAttribution'] as const;
export type Category = (typeof CATEGORIES)[number];

/** Number words; index = count. Count 1 is written 'a'/'an' in generated captions, 'one' also parses. */
export const NUMBER_WORDS = ['', 'one', 'two', 'three', 'four'] as const;
export const MAX_COUNT = 4;
