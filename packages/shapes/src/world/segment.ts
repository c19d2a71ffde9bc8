/**
 * Finding the objects in an image: colour segmentation against the palette, connected components and
 * shape classification by template fitting. Works on a CHW Float32Array in [-1, 1] (values outside are
 * clamped), at any square resolution.
 *
 * Colour. A pixel of an anti-aliased edge is a mix a * colour + (1 - a) * background, so each pixel is
 * projected onto the segment background -> colour of every palette colour; the colour with the
 * smallest residual wins (this is "nearest palette colour", made aware of anti-aliasing) and the
 * projection `a` is the pixel's coverage. A residual above MAX_RESIDUAL means "no palette colour".
 *
 * Objects. Pixels with coverage >= 0.5 form cores (4-connected); a core takes its majority colour
 * (or is split by colour when two colours both carry real weight: two touching objects), and grows by
 * up to RIM_DEPTH pixels into weaker pixels on its colour's line (its anti-aliased or blurred rim).
 * Candidates whose total coverage is below a minimum area are noise and dropped.
 *
 * Shape. From the coverage map's area and centroid, each shape has exactly one fitting size and
 * position; the candidate is rendered with the world's own rasteriser as a circle, a square and a
 * triangle, and the shape whose render differs least (L1, relative to the area) wins. A best misfit
 * above UNKNOWN_FIT leaves the shape 'unknown' (a blob that is none of the three).
 */
import { type Box, centroidOffsetY, pixelCoverage, radiusFromArea, shapeArea, shapeBox } from './geometry.js';
import { BACKGROUND, COLORS, type ColorName, PALETTE, SHAPES, type Shape, SIZE_RANGES, SIZE_THRESHOLD, type Size } from './palette.js';

/** Largest distance (RGB in [0, 1]) between a pixel and its background->colour segment to count as that colour. */
export const MAX_RESIDUAL = 0.25;
/** Pixels with less coverage than this are treated as background. */
const MIN_ALPHA = 0.01;
/** A best template misfit (L1 / area) above this makes the shape 'unknown'. */
export const UNKNOWN_FIT = 0.5;
/** Candidates smaller than this fraction of the smallest possible object are noise. */
const MIN_AREA_FRACTION = 0.3;
/**
 * Rim pixels need at least this coverage: fainter ones are mostly noise in a generated image (and
 * carry little area in a render).
 */
const RIM_MIN_ALPHA = 0.05;
/** A core whose second colour holds at least this share of its coverage is two objects, split by colour. */
const MIXED_SHARE = 0.3;
/** How far (pixels, 8-neighbour steps) an object's core grows into weaker pixels of its colour. */
const RIM_DEPTH = 3;
/** Gaussian blurs (sigma in pixels) tried on each shape template. */
const TEMPLATE_BLURS = [0, 0.6, 1.0, 1.5];
/** Pixels around a component's box that its templates may cover. */
const WINDOW_MARGIN = RIM_DEPTH + 1;

function l1(a: Float64Array, b: Float64Array): number {
  let e = 0;
  for (let i = 0; i < a.length; i++) e += Math.abs(a[i] - b[i]);
  return e;
}

/** Separable Gaussian blur of a w x h image with zero padding. */
function gaussianBlur(img: Float64Array, w: number, h: number, sigma: number): Float64Array {
  const rad = Math.ceil(2.5 * sigma);
  const k = new Float64Array(2 * rad + 1);
  let sum = 0;
  for (let i = -rad; i <= rad; i++) sum += k[i + rad] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= sum;
  const tmp = new Float64Array(w * h);
  const out = new Float64Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = 0;
      for (let i = -rad; i <= rad; i++) if (x + i >= 0 && x + i < w) v += k[i + rad] * img[y * w + x + i];
      tmp[y * w + x] = v;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = 0;
      for (let i = -rad; i <= rad; i++) if (y + i >= 0 && y + i < h) v += k[i + rad] * tmp[(y + i) * w + x];
      out[y * w + x] = v;
    }
  }
  return out;
}

/** An object found in an image; cx, cy, r normalised like a SceneObject. */
export interface DetectedObject {
  shape: Shape | 'unknown';
  color: ColorName;
  size: Size;
  cx: number;
  cy: number;
  r: number;
  /** Total coverage as a fraction of the canvas. */
  area: number;
  /** L1 misfit of the best template divided by the area (0 = a perfect render of `shape`). */
  fit: number;
  /** Misfit of each shape's template. */
  fits: Record<Shape, number>;
}

/** Bounding box of a detected object in normalised units. */
export function detectedBox(o: DetectedObject): Box {
  return shapeBox(o.shape === 'unknown' ? 'square' : o.shape, o.cx, o.cy, o.r);
}

/** Minimum total coverage (pixels) of an object at this resolution. */
export function minObjectArea(resolution: number): number {
  const smallest = Math.min(...SHAPES.map((s) => shapeArea(s, SIZE_RANGES.small[0])));
  return Math.max(2, MIN_AREA_FRACTION * smallest * resolution * resolution);
}

/** Background -> colour directions, flat [K, 3], and their squared lengths. */
const DIRS = new Float64Array(COLORS.flatMap((c) => [0, 1, 2].map((j) => PALETTE[c][j] - BACKGROUND[j])));
const DIR_NORM2 = new Float64Array(COLORS.map((_, k) => DIRS[3 * k] ** 2 + DIRS[3 * k + 1] ** 2 + DIRS[3 * k + 2] ** 2));
/** A pixel this close to the background has coverage < MIN_ALPHA for every colour (a <= |d| / |u|). */
const NEAR_BG2 = MIN_ALPHA * MIN_ALPHA * Math.min(...DIR_NORM2);

/** Per pixel: the colour index (-1 = background / no colour) and its coverage. */
export function classifyPixels(data: Float32Array, resolution: number): { label: Int8Array; alpha: Float32Array } {
  const n = resolution * resolution;
  const K = DIR_NORM2.length;
  const label = new Int8Array(n).fill(-1);
  const alpha = new Float32Array(n);
  const max2 = MAX_RESIDUAL * MAX_RESIDUAL;
  for (let i = 0; i < n; i++) {
    const d0 = clamp01((data[i] + 1) / 2) - BACKGROUND[0];
    const d1 = clamp01((data[n + i] + 1) / 2) - BACKGROUND[1];
    const d2 = clamp01((data[2 * n + i] + 1) / 2) - BACKGROUND[2];
    if (d0 * d0 + d1 * d1 + d2 * d2 < NEAR_BG2) continue;
    let best = -1;
    let bestRes = Number.POSITIVE_INFINITY;
    let bestA = 0;
    for (let k = 0; k < K; k++) {
      const u0 = DIRS[3 * k];
      const u1 = DIRS[3 * k + 1];
      const u2 = DIRS[3 * k + 2];
      let a = (d0 * u0 + d1 * u1 + d2 * u2) / DIR_NORM2[k];
      a = clamp01(a);
      const e0 = d0 - a * u0;
      const e1 = d1 - a * u1;
      const e2 = d2 - a * u2;
      const res = e0 * e0 + e1 * e1 + e2 * e2;
      if (res < bestRes) {
        bestRes = res;
        best = k;
        bestA = a;
      }
    }
    if (bestRes <= max2 && bestA >= MIN_ALPHA) {
      label[i] = best;
      alpha[i] = bestA;
    }
  }
  return { label, alpha };
}

function clamp01(v: number): number {
  return Math.min(1, Math.max(0, v));
}

/** Coverage of pixel i by colour k (projection onto background -> colour), or -1 when the pixel is off that line. */
function projectOnto(data: Float32Array, n: number, i: number, k: number): number {
  const d0 = clamp01((data[i] + 1) / 2) - BACKGROUND[0];
  const d1 = clamp01((data[n + i] + 1) / 2) - BACKGROUND[1];
  const d2 = clamp01((data[2 * n + i] + 1) / 2) - BACKGROUND[2];
  const u0 = DIRS[3 * k];
  const u1 = DIRS[3 * k + 1];
  const u2 = DIRS[3 * k + 2];
  let a = (d0 * u0 + d1 * u1 + d2 * u2) / DIR_NORM2[k];
  a = clamp01(a);
  const res = (d0 - a * u0) ** 2 + (d1 - a * u1) ** 2 + (d2 - a * u2) ** 2;
  return res <= MAX_RESIDUAL * MAX_RESIDUAL ? a : -1;
}

/**
 * 4-connected components of the pixels where `inside(p)` holds, starting from `pixels` (a component
 * only joins neighbours for which `same(p, q)` holds); returns the pixel lists. `mark` is scratch of
 * length W * W, all -1, and is left holding the component index of each visited pixel.
 */
function components(
  W: number,
  pixels: Iterable<number>,
  inside: (p: number) => boolean,
  same: (p: number, q: number) => boolean,
  mark: Int32Array,
): number[][] {
  const out: number[][] = [];
  for (const s of pixels) {
    if (mark[s] !== -1 || !inside(s)) continue;
    const list = [s];
    mark[s] = out.length;
    for (let h = 0; h < list.length; h++) {
      const p = list[h];
      const x = p % W;
      const nb = [x > 0 ? p - 1 : -1, x < W - 1 ? p + 1 : -1, p - W, p + W];
      for (const q of nb) {
        if (q >= 0 && q < W * W && mark[q] === -1 && inside(q) && same(p, q)) {
          mark[q] = out.length;
          list.push(q);
        }
      }
    }
    out.push(list);
  }
  return out;
}

/**
 * Area-averages a square CHW image from `res` to `target` pixels a side (any ratio: each output pixel
 * is the overlap-weighted mean of the input pixels under it). Linear, so an anti-aliased edge stays a
 * mix of its object's colour and the background, with the coverage of the coarser pixel.
 */
export function areaDownsample(data: Float32Array, res: number, target: number): Float32Array {
  const scale = res / target;
  // Per output index: the input indices it overlaps and the weights (summing to 1).
  const taps: { idx: number[]; w: number[] }[] = [];
  for (let o = 0; o < target; o++) {
    const a = o * scale;
    const b = (o + 1) * scale;
    const idx: number[] = [];
    const w: number[] = [];
    for (let i = Math.floor(a); i < Math.min(res, Math.ceil(b)); i++) {
      const overlap = Math.min(b, i + 1) - Math.max(a, i);
      if (overlap > 1e-9) {
        idx.push(i);
        w.push(overlap / scale);
      }
    }
    taps.push({ idx, w });
  }
  const rows = new Float32Array(3 * res * target); // [3, res, target]
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < res; y++) {
      const src = (c * res + y) * res;
      const dst = (c * res + y) * target;
      for (let o = 0; o < target; o++) {
        const { idx, w } = taps[o];
        let v = 0;
        for (let t = 0; t < idx.length; t++) v += w[t] * data[src + idx[t]];
        rows[dst + o] = v;
      }
    }
  }
  const out = new Float32Array(3 * target * target);
  for (let c = 0; c < 3; c++) {
    for (let o = 0; o < target; o++) {
      const { idx, w } = taps[o];
      for (let x = 0; x < target; x++) {
        let v = 0;
        for (let t = 0; t < idx.length; t++) v += w[t] * rows[(c * res + idx[t]) * target + x];
        out[(c * target + o) * target + x] = v;
      }
    }
  }
  return out;
}

/**
 * Images larger than this are area-averaged down to it before detection: the objects are at least
 * 10 px wide there, the cost stays bounded, and a blur of k pixels at 256 px is k / 4 pixels here.
 */
export const ANALYSIS_RESOLUTION = 64;

/** Finds the objects in a CHW image in [-1, 1] of size resolution x resolution. */
export function detectObjects(data: Float32Array, resolution: number): DetectedObject[] {
  if (resolution > ANALYSIS_RESOLUTION) {
    data = areaDownsample(data, resolution, ANALYSIS_RESOLUTION);
    resolution = ANALYSIS_RESOLUTION;
  }
  const W = resolution;
  const n = W * W;
  const { label, alpha } = classifyPixels(data, W);
  const strong = (p: number) => label[p] >= 0 && alpha[p] >= 0.5;
  // Cores: 4-connected strong pixels of any colour. A soft or noisy edge of an orange object has pixels
  // nearer red or yellow; the core takes its alpha-weighted majority colour. A core with two colours of
  // real weight is two touching objects and is split by colour.
  const owner = new Int32Array(n).fill(-1);
  const objAlpha = new Float32Array(n);
  const compColor: number[] = [];
  const all = Array.from({ length: n }, (_, i) => i);
  const mark = new Int32Array(n).fill(-1);
  const claim = (list: number[], k: number) => {
    const id = compColor.length;
    compColor.push(k);
    for (const p of list) {
      owner[p] = id;
      objAlpha[p] = label[p] === k ? alpha[p] : Math.max(0, projectOnto(data, n, p, k));
    }
  };
  for (const core of components(W, all, strong, () => true, mark)) {
    const mass = new Float64Array(COLORS.length);
    for (const p of core) mass[label[p]] += alpha[p];
    const total = mass.reduce((a, b) => a + b, 0);
    const order = [...mass.keys()].sort((a, b) => mass[b] - mass[a]);
    if (mass[order[1]] < MIXED_SHARE * total) claim(core, order[0]);
    else {
      for (const p of core) mark[p] = -1;
      for (const part of components(
        W,
        core,
        (p) => strong(p) && owner[p] === -1,
        (p, q) => label[p] === label[q],
        mark,
      ))
        claim(part, label[part[0]]);
    }
  }
  // Rims: breadth-first growth (8-neighbours, depth <= RIM_DEPTH) into weaker pixels that lie on the
  // object's colour line, all components at once, so a rim pixel goes to the nearest core.
  let frontier: number[] = [];
  for (let p = 0; p < n; p++) if (owner[p] !== -1) frontier.push(p);
  for (let depth = 0; depth < RIM_DEPTH; depth++) {
    const next: number[] = [];
    for (const p of frontier) {
      const x = p % W;
      const y = (p - x) / W;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const qx = x + dx;
          const qy = y + dy;
          if (qx < 0 || qy < 0 || qx >= W || qy >= W) continue;
          const q = qy * W + qx;
          if (owner[q] !== -1 || label[q] < 0) continue;
          const a = projectOnto(data, n, q, compColor[owner[p]]);
          if (a < RIM_MIN_ALPHA) continue;
          owner[q] = owner[p];
          objAlpha[q] = a;
          next.push(q);
        }
      }
    }
    frontier = next;
  }
  // Per-component moments and bounding boxes.
  const m = compColor.length;
  const area = new Float64Array(m);
  const sx = new Float64Array(m);
  const sy = new Float64Array(m);
  const bx0 = new Int32Array(m).fill(W);
  const by0 = new Int32Array(m).fill(W);
  const bx1 = new Int32Array(m).fill(-1);
  const by1 = new Int32Array(m).fill(-1);
  for (let p = 0; p < n; p++) {
    const id = owner[p];
    if (id < 0) continue;
    const x = p % W;
    const y = (p - x) / W;
    const a = objAlpha[p];
    area[id] += a;
    sx[id] += a * (x + 0.5);
    sy[id] += a * (y + 0.5);
    if (x < bx0[id]) bx0[id] = x;
    if (x > bx1[id]) bx1[id] = x;
    if (y < by0[id]) by0[id] = y;
    if (y > by1[id]) by1[id] = y;
  }
  const minArea = minObjectArea(resolution);
  const out: DetectedObject[] = [];
  for (let id = 0; id < m; id++) {
    if (area[id] < minArea) continue;
    const A = area[id];
    const mx = sx[id] / A;
    const my = sy[id] / A;
    // Window: the component's box plus a margin for the template's (blurred) rim, clipped to the canvas.
    const x0 = Math.max(0, bx0[id] - WINDOW_MARGIN);
    const x1 = Math.min(W - 1, bx1[id] + WINDOW_MARGIN);
    const y0 = Math.max(0, by0[id] - WINDOW_MARGIN);
    const y1 = Math.min(W - 1, by1[id] + WINDOW_MARGIN);
    const ww = x1 - x0 + 1;
    const wh = y1 - y0 + 1;
    const obs = new Float64Array(ww * wh);
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const p = y * W + x;
        if (owner[p] === id) obs[(y - y0) * ww + (x - x0)] = objAlpha[p];
      }
    }
    const fits = {} as Record<Shape, number>;
    let best: Shape = 'circle';
    for (const shape of SHAPES) {
      const r = radiusFromArea(shape, A);
      const cy = my - centroidOffsetY(shape, r);
      const tmpl = new Float64Array(ww * wh);
      for (let y = y0; y <= y1; y++) {
        for (let x = x0; x <= x1; x++) tmpl[(y - y0) * ww + (x - x0)] = pixelCoverage(shape, mx, cy, r, x, y);
      }
      // The sharp template, and blurred ones: a generated image's edges are softer than a render's,
      // and blur rounds a square's corners towards a circle unless the template is blurred alike.
      let err = Number.POSITIVE_INFINITY;
      for (const sigma of TEMPLATE_BLURS) err = Math.min(err, l1(obs, sigma === 0 ? tmpl : gaussianBlur(tmpl, ww, wh, sigma)));
      fits[shape] = err / A;
      if (fits[shape] < fits[best]) best = shape;
    }
    const fit = fits[best];
    const rNorm = radiusFromArea(best, A) / W;
    out.push({
      shape: fit > UNKNOWN_FIT ? 'unknown' : best,
      color: COLORS[compColor[id]],
      size: rNorm < SIZE_THRESHOLD ? 'small' : 'large',
      cx: mx / W,
      cy: (my - centroidOffsetY(best, radiusFromArea(best, A))) / W,
      r: rNorm,
      area: A / n,
      fit,
      fits,
    });
  }
  return out;
}
