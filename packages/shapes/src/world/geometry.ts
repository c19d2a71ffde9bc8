/**
 * Geometry shared by the renderer, the scene sampler and the checker: shape extents, the coverage of a
 * pixel by a shape, and the relative-position test.
 *
 * Coordinates: x to the right, y downwards (image convention), so 'above' means a smaller y. A scene
 * lives in normalised units ([0, 1] spans the square canvas); the functions that take pixel units say so.
 */
import type { Relation, Shape } from './palette.js';

/** Half-height of a shape whose half-width is `r` (a triangle is equilateral, pointing up). */
export function halfHeight(shape: Shape, r: number): number {
  return shape === 'triangle' ? (r * Math.sqrt(3)) / 2 : r;
}

/** Area of a shape of half-width `r` (in the square of r's unit). */
export function shapeArea(shape: Shape, r: number): number {
  if (shape === 'circle') return Math.PI * r * r;
  if (shape === 'square') return 4 * r * r;
  return Math.sqrt(3) * r * r;
}

/** Half-width of a shape with the given area (inverse of shapeArea). */
export function radiusFromArea(shape: Shape, area: number): number {
  if (shape === 'circle') return Math.sqrt(area / Math.PI);
  if (shape === 'square') return Math.sqrt(area) / 2;
  return Math.sqrt(area / Math.sqrt(3));
}

/**
 * Vertical offset of the area centroid below the bounding-box centre. Only the triangle has one: its
 * centroid sits a third of the way up from the base, i.e. hh/3 below the box centre.
 */
export function centroidOffsetY(shape: Shape, r: number): number {
  return shape === 'triangle' ? halfHeight(shape, r) / 3 : 0;
}

const S3 = Math.sqrt(3) / 2;

/**
 * Signed distance from (x, y) to the shape boundary (negative inside), all in the same unit. Exact
 * inside; outside it may underestimate near a polygon's corners (max of half-plane distances), which
 * keeps the early-out in `pixelCoverage` safe.
 */
export function signedDistance(shape: Shape, cx: number, cy: number, r: number, x: number, y: number): number {
  const dx = x - cx;
  const dy = y - cy;
  if (shape === 'circle') return Math.hypot(dx, dy) - r;
  if (shape === 'square') return Math.max(Math.abs(dx) - r, Math.abs(dy) - r);
  // Triangle: apex (cx, cy - hh), base from (cx - r, cy + hh) to (cx + r, cy + hh).
  const hh = r * S3;
  const base = dy - hh;
  const fromApex = dy + hh;
  const left = -S3 * dx - 0.5 * fromApex;
  const right = S3 * dx - 0.5 * fromApex;
  return Math.max(base, left, right);
}

/** Sub-samples per pixel side for edge pixels (64 samples: 65 coverage levels). */
export const SUPERSAMPLE = 8;
/** Half the pixel diagonal: beyond this distance from the boundary a pixel is fully in or out. */
const HALF_DIAGONAL = Math.SQRT1_2 + 1e-6;

/**
 * Fraction of pixel (px, py) covered by the shape, everything in pixel units (the pixel spans
 * [px, px+1] x [py, py+1]). Pixels far from the boundary are decided by the signed distance at their
 * centre; edge pixels are supersampled on an 8 x 8 grid. Deterministic (no randomness).
 */
export function pixelCoverage(shape: Shape, cx: number, cy: number, r: number, px: number, py: number): number {
  const d = signedDistance(shape, cx, cy, r, px + 0.5, py + 0.5);
  if (d >= HALF_DIAGONAL) return 0;
  if (d <= -HALF_DIAGONAL) return 1;
  let inside = 0;
  for (let j = 0; j < SUPERSAMPLE; j++) {
    const y = py + (j + 0.5) / SUPERSAMPLE;
    for (let i = 0; i < SUPERSAMPLE; i++) {
      if (signedDistance(shape, cx, cy, r, px + (i + 0.5) / SUPERSAMPLE, y) <= 0) inside++;
    }
  }
  return inside / (SUPERSAMPLE * SUPERSAMPLE);
}

/** An axis-aligned box by centre and half-extents (any unit). */
export interface Box {
  cx: number;
  cy: number;
  hw: number;
  hh: number;
}

/** The bounding box of a shape. */
export function shapeBox(shape: Shape, cx: number, cy: number, r: number): Box {
  return { cx, cy, hw: r, hh: halfHeight(shape, r) };
}

/** The gap between two boxes: the larger of the horizontal and vertical clearances (< 0: they overlap). */
export function boxGap(a: Box, b: Box): number {
  const gx = Math.abs(a.cx - b.cx) - a.hw - b.hw;
  const gy = Math.abs(a.cy - b.cy) - a.hh - b.hh;
  return Math.max(gx, gy);
}

/**
 * Part of each box's size that an offset must exceed before it counts (as in GenEval's position check,
 * which shrinks the centre offset by 0.1 x the sum of the two boxes' sizes per axis).
 */
export const POSITION_THRESHOLD = 0.1;

/**
 * The offset of box a from box b, shrunk per axis by POSITION_THRESHOLD x (size a + size b) and divided
 * by the length of the raw offset: [dx, dy], each in [-1, 1]. 'left of' holds when dx < -0.5, 'right of'
 * when dx > 0.5, 'above' when dy < -0.5, 'below' when dy > 0.5 (GenEval's rule).
 */
export function relativeOffset(a: Box, b: Box): [number, number] {
  const ox = a.cx - b.cx;
  const oy = a.cy - b.cy;
  const norm = Math.hypot(ox, oy);
  if (norm === 0) return [0, 0];
  const rx = Math.sign(ox) * Math.max(Math.abs(ox) - POSITION_THRESHOLD * 2 * (a.hw + b.hw), 0);
  const ry = Math.sign(oy) * Math.max(Math.abs(oy) - POSITION_THRESHOLD * 2 * (a.hh + b.hh), 0);
  return [rx / norm, ry / norm];
}

/** How strongly `relation` holds for a relative to b: > 0.5 means it holds. */
export function relationStrength(a: Box, b: Box, relation: Relation): number {
  const [dx, dy] = relativeOffset(a, b);
  if (relation === 'left of') return -dx;
  if (relation === 'right of') return dx;
  if (relation === 'above') return -dy;
  return dy;
}

/** True when `relation` holds for a relative to b. */
export function relationHolds(a: Box, b: Box, relation: Relation): boolean {
  return relationStrength(a, b, relation) > 0.5;
}

/** The strength of the relations on the other axis (so a sampler can keep a scene unambiguous). */
export function crossStrength(a: Box, b: Box, relation: Relation): number {
  const [dx, dy] = relativeOffset(a, b);
  return relation === 'left of' || relation === 'right of' ? Math.abs(dy) : Math.abs(dx);
}
