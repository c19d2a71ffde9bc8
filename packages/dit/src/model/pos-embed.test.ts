import { describe, expect, it } from 'vitest';
import { gridCoordinates, sincosPosEmbed } from './pos-embed.js';

describe('sincosPosEmbed / gridCoordinates', () => {
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

  it('interpolated: sincos at the base grid, the base range at any other (PixArt base-size scaling)', () => {
    const base: [number, number] = [16, 16];
    const at = (g: [number, number]) => gridCoordinates(g, 'interpolated', base);
    // the base grid: exactly sincos, so a sincos-trained model is unchanged there
    expect(at([16, 16])).toEqual(gridCoordinates([16, 16], 'sincos'));
    expect(sincosPosEmbed([16, 16], 8, 'interpolated', base)).toEqual(sincosPosEmbed([16, 16], 8, 'sincos'));
    // 2×: half steps over [0, 16), not coordinates up to 31
    const big = at([32, 32]);
    expect(big.rows[1]).toBe(0.5);
    expect(big.cols[31]).toBe(15.5);
    // one step on both axes (aspect ratio kept), set by the long edge: 64 columns → step 1/4
    const wide = at([32, 64]);
    expect(wide.cols[63]).toBe(15.75);
    expect(wide.rows[31]).toBe(7.75);
    // a smaller grid is stretched over the same range
    expect(at([8, 8]).rows[7]).toBe(14);
    // without a base grid the grid is its own base: sincos
    expect(gridCoordinates([5, 3], 'interpolated')).toEqual(gridCoordinates([5, 3], 'sincos'));
    // independent of gridCoordinates: the embedding's row channel is sin(i / 2) at a 2× grid
    const pe = sincosPosEmbed([32, 32], 8, 'interpolated', base);
    const token = 7 * 32 + 3; // row 7, column 3
    expect(pe[token * 8 + 4]).toBeCloseTo(Math.sin(3.5), 6);
    expect(pe[token * 8]).toBeCloseTo(Math.sin(1.5), 6);
  });

  it('rejects an unknown kind with the kinds it knows', () => {
    expect(() => gridCoordinates([2, 2], 'rope' as 'sincos')).toThrow(/mode must be one of sincos, centered, interpolated, got "rope"/);
  });

  it('rejects a width that is not a multiple of 4', () => {
    expect(() => sincosPosEmbed([2, 2], 6)).toThrow(/multiple of 4/);
  });
});
