import { InputError } from '../errors.js';

/**
 * How the flat elementwise programs (`ElementwiseProgram`, and adaNorm's row program) are laid out on
 * WebGPU. Each op that runs one takes it as an explicit option (`{layout}`), 'auto' by default: a
 * benchmark passes the layouts it compares, nothing is read from the environment or a global.
 */
export interface ElementwiseConfig {
  /** Vectors (vec4 or f32) each thread moves per block, unrolled: 1..16, default 4. */
  itemsPerThread: number;
  /** Threads per workgroup: a power of two in 32..1024, default 256. */
  workgroupSize: number;
  /**
   * Most workgroups launched along x; past it the grid strides (so any size fits the device's 65,535
   * workgroups per dimension): 1..65535, default 65535.
   */
  maxWorkgroups: number;
}

/** An op's `layout` option: 'auto' (the defaults), or some fields of `ElementwiseConfig` over them. */
export type ElementwiseLayout = 'auto' | Partial<ElementwiseConfig>;

/**
 * The defaults: on the H100 (bench/results of 2026-11-26, superseded since, see bench/README.md) four
 * vec4 per thread in workgroups of 256 over the full grid were within a few % of the best layout of
 * every op measured.
 */
export const ELEMENTWISE_DEFAULTS: Readonly<ElementwiseConfig> = Object.freeze({
  itemsPerThread: 4,
  workgroupSize: 256,
  maxWorkgroups: 65535,
});

/**
 * The layout `layout` asks for, with the defaults filled in; an InputError naming the field when a
 * value is out of range, so a bad option never reaches a shader.
 */
export function resolveElementwiseLayout(layout: ElementwiseLayout = 'auto'): ElementwiseConfig {
  if (layout === 'auto') return { ...ELEMENTWISE_DEFAULTS };
  if (layout == null || typeof layout !== 'object') {
    throw new InputError(`layout must be 'auto' or {itemsPerThread?, workgroupSize?, maxWorkgroups?}, got ${String(layout)}.`);
  }
  const c = { ...ELEMENTWISE_DEFAULTS, ...layout };
  const bad = (v: number, lo: number, hi: number) => !Number.isInteger(v) || v < lo || v > hi;
  if (bad(c.itemsPerThread, 1, 16)) throw new InputError(`layout.itemsPerThread must be an integer in 1..16, got ${c.itemsPerThread}.`);
  if (bad(c.workgroupSize, 32, 1024) || (c.workgroupSize & (c.workgroupSize - 1)) !== 0) {
    throw new InputError(`layout.workgroupSize must be a power of two in 32..1024, got ${c.workgroupSize}.`);
  }
  if (bad(c.maxWorkgroups, 1, 65535)) throw new InputError(`layout.maxWorkgroups must be an integer in 1..65535, got ${c.maxWorkgroups}.`);
  return { itemsPerThread: c.itemsPerThread, workgroupSize: c.workgroupSize, maxWorkgroups: c.maxWorkgroups };
}

/**
 * The layout carried in a kernel's attributes (an op spreads its resolved layout into them, so the
 * gradient's kernel gets the same one): the three fields, whatever else the attributes hold.
 */
export function layoutOf(attrs: unknown): ElementwiseConfig {
  const a = attrs as Partial<ElementwiseConfig> | undefined;
  return {
    itemsPerThread: a?.itemsPerThread ?? ELEMENTWISE_DEFAULTS.itemsPerThread,
    workgroupSize: a?.workgroupSize ?? ELEMENTWISE_DEFAULTS.workgroupSize,
    maxWorkgroups: a?.maxWorkgroups ?? ELEMENTWISE_DEFAULTS.maxWorkgroups,
  };
}
