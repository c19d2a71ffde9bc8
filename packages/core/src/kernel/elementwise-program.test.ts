import { describe, expect, it } from 'vitest';
import { ELEMENTWISE_DEFAULTS, layoutOf, resolveElementwiseLayout } from './elementwise-config.js';
import { ElementwiseProgram, type ElementwiseSpec } from './elementwise-program.js';

const spec: ElementwiseSpec = { name: 'copy', inputs: ['x'], code: 'fn elementwise(e : i32, v : T) -> T { return v; }' };

describe('elementwise layout', () => {
  it("resolves 'auto' and partial layouts over the defaults, and reads them back from kernel attributes", () => {
    expect(resolveElementwiseLayout()).toEqual({ itemsPerThread: 4, workgroupSize: 256, maxWorkgroups: 65535 });
    expect(resolveElementwiseLayout('auto')).toEqual(ELEMENTWISE_DEFAULTS);
    const c = resolveElementwiseLayout({ itemsPerThread: 8, maxWorkgroups: 3 });
    expect(c).toEqual({ itemsPerThread: 8, workgroupSize: 256, maxWorkgroups: 3 });
    expect(layoutOf({ gateIdx: 2, ...c })).toEqual(c);
    expect(layoutOf(undefined)).toEqual(ELEMENTWISE_DEFAULTS);
  });

  it('rejects bad values with a message naming the field', () => {
    expect(() => resolveElementwiseLayout({ itemsPerThread: 0 })).toThrow(/layout.itemsPerThread must be an integer in 1..16, got 0/);
    expect(() => resolveElementwiseLayout({ workgroupSize: 100 })).toThrow(
      /layout.workgroupSize must be a power of two in 32..1024, got 100/,
    );
    expect(() => resolveElementwiseLayout({ maxWorkgroups: 70000 })).toThrow(/layout.maxWorkgroups must be an integer in 1..65535/);
    expect(() => resolveElementwiseLayout('fast' as 'auto')).toThrow(/layout must be 'auto' or/);
  });

  it('uses vec4 only on multiples of 4 and keeps any size within 65,535 workgroups', () => {
    const c = { itemsPerThread: 4, workgroupSize: 256, maxWorkgroups: 65535 };
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
