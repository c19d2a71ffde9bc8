import { assertInt, check } from '@t2md/core';
import { POS_EMBED_KINDS, type PosEmbedKind } from './config.js';

/**
 * The coordinates of each token row and column that the positional embedding encodes.
 *
 * - `'sincos'` (DiT / PixArt at their training resolution): row i sits at i, column j at j. A larger
 *   grid reaches coordinates the model never saw.
 * - `'centered'` (T2MD's resolution adaptation): coordinates are centred on the grid and scaled by
 *   s = max(baseRows, baseCols) / max(rows, cols), i.e. token (i, j) sits at
 *   ((i + 0.5 - rows/2)·s, (j + 0.5 - cols/2)·s). The long edge then always spans [-base/2, base/2]
 *   (base = the base grid's long edge), whatever the resolution: a 2× grid samples the same range twice
 *   as densely instead of extending it. The short edge uses the same step, so the aspect ratio is kept.
 *   At the base grid the step is 1, the teacher's frequencies, only shifted to the centre.
 * - `'interpolated'` (PixArt's base-size scaling): token (i, j) sits at (i·s, j·s) with the same
 *   s = max(baseRows, baseCols) / max(rows, cols), so a 2× grid samples the trained range [0, base)
 *   twice as densely. At the base grid it is exactly `'sincos'` (s = 1, no shift), so a model trained
 *   with `'sincos'` at its base grid loads as `'interpolated'` unchanged there, and draws at other sizes
 *   from coordinates it has seen. (PixArt scales each axis by its own grid; one step for both keeps
 *   the aspect ratio, as `'centered'` does.)
 *
 * Without a base grid, the grid itself is the base (step 1) for both scaled kinds.
 */
export function gridCoordinates(
  grid: readonly [number, number],
  mode: PosEmbedKind = 'sincos',
  baseGrid?: readonly [number, number],
): { rows: Float64Array; cols: Float64Array } {
  const [gh, gw] = grid;
  assertInt('grid[0]', gh, 1);
  assertInt('grid[1]', gw, 1);
  check(POS_EMBED_KINDS.includes(mode), () => `mode must be one of ${POS_EMBED_KINDS.join(', ')}, got ${JSON.stringify(mode)}.`);
  const rows = new Float64Array(gh);
  const cols = new Float64Array(gw);
  if (mode === 'sincos') {
    for (let i = 0; i < gh; i++) rows[i] = i;
    for (let j = 0; j < gw; j++) cols[j] = j;
    return { rows, cols };
  }
  const base = baseGrid ?? grid;
  const s = Math.max(base[0], base[1]) / Math.max(gh, gw);
  if (mode === 'interpolated') {
    for (let i = 0; i < gh; i++) rows[i] = i * s;
    for (let j = 0; j < gw; j++) cols[j] = j * s;
    return { rows, cols };
  }
  for (let i = 0; i < gh; i++) rows[i] = (i + 0.5 - gh / 2) * s;
  for (let j = 0; j < gw; j++) cols[j] = (j + 0.5 - gw / 2) * s;
  return { rows, cols };
}

/**
 * The fixed 2D sin-cos positional embedding, `[rows·cols, dim]` row-major over tokens (token i·cols + j),
 * laid out as PixArt's `get_2d_sincos_pos_embed`: the first dim/2 channels encode the column coordinate,
 * the last dim/2 the row coordinate, each as [sin(pos·ω_k) for k < dim/4, cos(pos·ω_k) for k < dim/4]
 * with ω_k = 10000^(-k / (dim/4)).
 * @param dim the model width D, a multiple of 4
 */
export function sincosPosEmbed(
  grid: readonly [number, number],
  dim: number,
  mode: PosEmbedKind = 'sincos',
  baseGrid?: readonly [number, number],
): Float32Array {
  assertInt('dim', dim, 4);
  check(dim % 4 === 0, () => `dim must be a multiple of 4 for a 2D sin-cos embedding, got ${dim}.`);
  const { rows, cols } = gridCoordinates(grid, mode, baseGrid);
  const q = dim / 4;
  const omega = new Float64Array(q);
  for (let k = 0; k < q; k++) omega[k] = 1 / 10000 ** (k / q);
  const [gh, gw] = grid;
  const out = new Float32Array(gh * gw * dim);
  for (let i = 0; i < gh; i++) {
    for (let j = 0; j < gw; j++) {
      const o = (i * gw + j) * dim;
      for (let k = 0; k < q; k++) {
        const aw = cols[j] * omega[k];
        const ah = rows[i] * omega[k];
        out[o + k] = Math.sin(aw);
        out[o + q + k] = Math.cos(aw);
        out[o + 2 * q + k] = Math.sin(ah);
        out[o + 3 * q + k] = Math.cos(ah);
      }
    }
  }
  return out;
}
