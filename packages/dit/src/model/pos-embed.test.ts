import { describe, expect, it } from 'vitest';
import { gridCoordinates, sincosPosEmbed } from './pos-embed.js';

describe('sincosPosEmbed', () => {
  it('matches the formula at known entries (PixArt layout: column half first, sin before cos)', () => {
    // dim 8: ω = [1, 1/100]; token (row 2, col 3) of a 3×4 grid is token 11.
    const pe = sincosPosEmbed([3, 4], 8);
    const row = Array.from(pe.subarray(11 * 8, 12 * 8));
    const want = [Math.sin(3), Math.sin(0.03), Math.cos(3), Math.cos(0.03), Math.sin(2), Math.sin(0.02), Math.cos(2), Math.cos(0.02)];
    for (const [i, v] of row.entries()) expect(v).toBeCloseTo(want[i], 6);
    // spelled-out values of the same entries, so a wrong Math call cannot hide in both sides
    expect(row[0]).toBeCloseTo(0.14112, 5);
    expect(row[2]).toBeCloseTo(-0.989992, 5);
    expect(row[4]).toBeCloseTo(0.909297, 5);
    expect(row[6]).toBeCloseTo(-0.416147, 5);
    expect(Array.from(pe.subarray(0, 8))).toEqual([0, 0, 1, 1, 0, 0, 1, 1]);
  });

  it('centered: the long edge spans [-base/2, base/2] at any resolution, aspect ratio kept', () => {
    const base: [number, number] = [16, 16];
    const at = (g: [number, number]) => gridCoordinates(g, 'centered', base);
    const b = at([16, 16]);
    expect(b.cols[0]).toBe(-7.5);
    expect(b.cols[15]).toBe(7.5);
    expect(b.cols[1] - b.cols[0]).toBe(1); // the teacher's step at the base grid
    const big = at([32, 64]); // 2× taller, 4× wider than base: step 16/64
    expect(big.cols[0]).toBeCloseTo(-8 + 0.125, 12);
    expect(big.cols[63]).toBeCloseTo(8 - 0.125, 12);
    expect(big.rows[0]).toBeCloseTo(-4 + 0.125, 12);
    expect(big.rows[31]).toBeCloseTo(4 - 0.125, 12);
    expect(big.rows[1] - big.rows[0]).toBeCloseTo(big.cols[1] - big.cols[0], 12);
    // 'sincos' extends the range instead
    expect(gridCoordinates([32, 64], 'sincos').cols[63]).toBe(63);
    // the embedding encodes those coordinates: channel 0 = sin(col), channel dim/2 = sin(row)
    const pe = sincosPosEmbed([32, 64], 8, 'centered', base);
    expect(pe[0]).toBeCloseTo(Math.sin(big.cols[0]), 6);
    expect(pe[4]).toBeCloseTo(Math.sin(big.rows[0]), 6);
    expect(pe[(31 * 64 + 63) * 8 + 2]).toBeCloseTo(Math.cos(big.cols[63]), 6);
  });

  it('rejects a width that is not a multiple of 4', () => {
    expect(() => sincosPosEmbed([2, 2], 6)).toThrow(/multiple of 4/);
  });
});
