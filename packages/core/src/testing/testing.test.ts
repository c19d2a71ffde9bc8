import { afterEach, describe, expect, it } from 'vitest';
import { backendRequired, excludedReason, stratifiedArray, testBackends, useBackend } from './index.js';

describe('test backends', () => {
  const saved = { only: process.env.T2MD_TEST_BACKENDS, gpu: process.env.T2MD_REQUIRE_WEBGPU };
  afterEach(() => {
    for (const [k, v] of [
      ['T2MD_TEST_BACKENDS', saved.only],
      ['T2MD_REQUIRE_WEBGPU', saved.gpu],
    ] as const) {
      if (v == null) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('lists every backend, so a narrowed run reports the others as skipped instead of dropping them', () => {
    process.env.T2MD_TEST_BACKENDS = 'cpu';
    expect(testBackends()).toEqual(['cpu', 'wasm', 'webgpu']);
    expect(excludedReason('cpu')).toBeUndefined();
    expect(excludedReason('wasm')).toBe('T2MD_TEST_BACKENDS=cpu leaves wasm out');
    process.env.T2MD_TEST_BACKENDS = 'cpu,gpu';
    expect(() => excludedReason('cpu')).toThrow(/unknown backends \(gpu\)/);
    delete process.env.T2MD_TEST_BACKENDS;
    expect(excludedReason('webgpu')).toBeUndefined();
  });

  it('requires cpu and wasm everywhere and webgpu under T2MD_REQUIRE_WEBGPU=1', () => {
    delete process.env.T2MD_REQUIRE_WEBGPU;
    expect([backendRequired('cpu'), backendRequired('wasm'), backendRequired('webgpu')]).toEqual([true, true, false]);
    process.env.T2MD_REQUIRE_WEBGPU = '1';
    expect(backendRequired('webgpu')).toBe(true);
  });

  it('skips a left-out backend through the test context with the reason', async () => {
    process.env.T2MD_TEST_BACKENDS = 'cpu';
    const notes: (string | undefined)[] = [];
    await expect(useBackend('wasm', { skip: (note) => notes.push(note) })).rejects.toThrow(/skipped/);
    expect(notes).toEqual(['T2MD_TEST_BACKENDS=cpu leaves wasm out']);
    const info = await useBackend('cpu', { skip: (note) => notes.push(note) });
    expect(info.backend).toBe('cpu');
    expect(notes).toHaveLength(1);
  });
});

describe('stratifiedArray', () => {
  it('draws one value in each of n equal strata of [lo, hi], shuffled, the same for the same seed', () => {
    for (const [n, seed, lo, hi] of [
      [7, 1, -6, 6],
      [300, 12345, 0, 1],
      [1, 9, -2, 2],
    ]) {
      const v = stratifiedArray(n, seed, lo, hi);
      expect(v).toHaveLength(n);
      const strata = Array.from(v, (x) => Math.min(n - 1, Math.floor(((x - lo) / (hi - lo)) * n))).sort((a, b) => a - b);
      expect(strata).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(Array.from(stratifiedArray(n, seed, lo, hi))).toEqual(Array.from(v));
    }
    // shuffled: 300 values are not in stratum order
    const v = stratifiedArray(300, 4, 0, 1);
    expect(Array.from(v).some((x, i) => i > 0 && x < v[i - 1]!)).toBe(true);
  });
});
