import { afterEach, describe, expect, it } from 'vitest';
import { elementwiseConfig, setElementwiseConfig } from './elementwise-config.js';
import { ElementwiseProgram, type ElementwiseSpec } from './elementwise-program.js';

const spec: ElementwiseSpec = { name: 'copy', inputs: ['x'], code: 'fn elementwise(e : i32, v : T) -> T { return v; }' };
const ENV = ['T2MD_ELEMENTWISE', 'T2MD_ELEMENTWISE_ITEMS', 'T2MD_ELEMENTWISE_WG', 'T2MD_ELEMENTWISE_MAX_WG'];

describe('elementwise layout', () => {
  const saved = ENV.map((k) => process.env[k]);
  afterEach(() => {
    ENV.forEach((k, i) => {
      if (saved[i] == null) delete process.env[k];
      else process.env[k] = saved[i];
    });
  });

  it('reads the environment, lets an override win, and restores it', () => {
    for (const k of ENV) delete process.env[k];
    expect(elementwiseConfig()).toEqual({ version: 'v2', itemsPerThread: 4, workgroupSize: 256, maxWorkgroups: 65535 });
    process.env.T2MD_ELEMENTWISE = 'v1';
    process.env.T2MD_ELEMENTWISE_ITEMS = '8';
    expect(elementwiseConfig()).toMatchObject({ version: 'v1', itemsPerThread: 8 });
    const restore = setElementwiseConfig({ version: 'v2', maxWorkgroups: 3 });
    expect(elementwiseConfig()).toMatchObject({ version: 'v2', itemsPerThread: 8, maxWorkgroups: 3 });
    restore();
    expect(elementwiseConfig().version).toBe('v1');
  });

  it('rejects bad values with a message naming the variable', () => {
    process.env.T2MD_ELEMENTWISE = 'v3';
    expect(() => elementwiseConfig()).toThrow(/T2MD_ELEMENTWISE must be v1 or v2, got 'v3'/);
    delete process.env.T2MD_ELEMENTWISE;
    process.env.T2MD_ELEMENTWISE_WG = '100';
    expect(() => elementwiseConfig()).toThrow(/T2MD_ELEMENTWISE_WG must be a power of two in 32..1024, got '100'/);
    expect(() => setElementwiseConfig({ itemsPerThread: 0 })).toThrow(/out of range/);
  });

  it('uses vec4 only on multiples of 4 and keeps any size within 65,535 workgroups', () => {
    const c = { version: 'v2', itemsPerThread: 4, workgroupSize: 256, maxWorkgroups: 65535 } as const;
    const big = new ElementwiseProgram(spec, [2 ** 28], c); // 256M floats: 64M vec4 / (256 · 4) per block
    expect(big.outputComponent).toBe(4);
    expect(big.dispatch).toEqual([65535, 1, 1]); // 65,536 blocks: the grid strides once more
    const odd = new ElementwiseProgram(spec, [3, 5, 7], c);
    expect(odd.outputComponent).toBe(1);
    expect(odd.dispatch).toEqual([1, 1, 1]);
    expect(new ElementwiseProgram({ ...spec, vec4: false }, [64], c).outputComponent).toBe(1);
    // the layout is baked into the WGSL, so it must be in the pipeline key
    expect(big.shaderKey).not.toBe(new ElementwiseProgram(spec, [2 ** 28], { ...c, itemsPerThread: 8 }).shaderKey);
    expect(big.getUserCode()).toContain('let v0_3 = x[min(i3, last)];');
  });
});
