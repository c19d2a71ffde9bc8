import { describe, expect, it } from 'vitest';
import { Rng } from './rng.js';
import { testBackends, useBackend, withNoLeaks } from './testing/index.js';

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    expect(Array.from(new Rng(7).normals(5))).toEqual(Array.from(new Rng(7).normals(5)));
    expect(Array.from(new Rng(7).normals(5))).not.toEqual(Array.from(new Rng(8).normals(5)));
  });

  it('resumes exactly from a saved state', () => {
    const a = new Rng(123);
    a.normals(3); // leaves a Box-Muller spare
    const state = JSON.parse(JSON.stringify(a.state));
    const b = new Rng(state);
    expect(Array.from(b.normals(9))).toEqual(Array.from(a.normals(9)));
  });

  it('draws standard normals and uniforms with the right moments', () => {
    const r = new Rng(1);
    const n = r.normals(200_000);
    const mean = n.reduce((s, v) => s + v, 0) / n.length;
    const varr = n.reduce((s, v) => s + (v - mean) ** 2, 0) / n.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(varr - 1)).toBeLessThan(0.01);
    const u = r.uniforms(100_000, -2, 2);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u)).toBeLessThan(2);
  });

  it('rejects a bad seed with a message naming it', () => {
    expect(() => new Rng(-1)).toThrow(/seed must be an integer/);
    expect(() => new Rng(1.5)).toThrow(/seed must be an integer/);
  });

  it.for(testBackends())('gives the same tensor values on %s', async (name, ctx) => {
    await useBackend(name, ctx);
    await withNoLeaks(async () => {
      const t = new Rng(99).randn([3, 4]);
      expect(t.dtype).toBe('float32');
      expect(Array.from(await t.data())).toEqual(Array.from(new Rng(99).normals(12)));
      t.dispose();
    });
  });
});
