import { InputError } from '../errors.js';

/**
 * How the flat elementwise programs (and adaNorm's row program) are laid out. Read from the
 * environment on every kernel launch, so a benchmark can A/B them in one process through
 * `setElementwiseConfig`, and the lead can choose defaults from one GPU run.
 */
export interface ElementwiseConfig {
  /**
   * 'v2' (default): the programs of `ElementwiseProgram` (flat indexing, vec4, several elements per
   * thread, grid-stride). 'v1': the earlier one-element-per-thread programs, kept for A/B.
   * Env `T2MD_ELEMENTWISE`.
   */
  version: 'v1' | 'v2';
  /** Vectors (vec4 or f32) each thread moves per block, unrolled. Env `T2MD_ELEMENTWISE_ITEMS`, 1..16, default 4. */
  itemsPerThread: number;
  /** Threads per workgroup. Env `T2MD_ELEMENTWISE_WG`, a power of two in 32..1024, default 256. */
  workgroupSize: number;
  /**
   * Most workgroups launched along x; past it the grid strides (so any size fits the device's 65,535
   * workgroups per dimension). Env `T2MD_ELEMENTWISE_MAX_WG`, 1..65535, default 65535.
   */
  maxWorkgroups: number;
}

const DEFAULTS: ElementwiseConfig = { version: 'v2', itemsPerThread: 4, workgroupSize: 256, maxWorkgroups: 65535 };

let override: Partial<ElementwiseConfig> = {};

const env = (name: string): string | undefined =>
  typeof process !== 'undefined' && process.env != null ? process.env[name]?.trim() || undefined : undefined;

function intFromEnv(name: string, lo: number, hi: number, dflt: number, pow2 = false): number {
  const raw = env(name);
  if (raw == null) return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < lo || v > hi || (pow2 && (v & (v - 1)) !== 0)) {
    throw new InputError(`${name} must be ${pow2 ? 'a power of two' : 'an integer'} in ${lo}..${hi}, got '${raw}'.`);
  }
  return v;
}

/** The layout in force: `setElementwiseConfig` overrides, then the environment, then the defaults. */
export function elementwiseConfig(): ElementwiseConfig {
  const version = env('T2MD_ELEMENTWISE') ?? DEFAULTS.version;
  if (version !== 'v1' && version !== 'v2') throw new InputError(`T2MD_ELEMENTWISE must be v1 or v2, got '${version}'.`);
  return {
    version,
    itemsPerThread: intFromEnv('T2MD_ELEMENTWISE_ITEMS', 1, 16, DEFAULTS.itemsPerThread),
    workgroupSize: intFromEnv('T2MD_ELEMENTWISE_WG', 32, 1024, DEFAULTS.workgroupSize, true),
    maxWorkgroups: intFromEnv('T2MD_ELEMENTWISE_MAX_WG', 1, 65535, DEFAULTS.maxWorkgroups),
    ...override,
  };
}

/**
 * Overrides parts of the layout for this process (benchmarks sweep variants; tests force a tiny grid
 * so the grid-stride path runs on small shapes). Returns a function that restores the previous one.
 */
export function setElementwiseConfig(c: Partial<ElementwiseConfig>): () => void {
  const ok = (v: number | undefined, lo: number, hi: number) => v == null || (Number.isInteger(v) && v >= lo && v <= hi);
  if (
    !ok(c.itemsPerThread, 1, 16) ||
    !ok(c.workgroupSize, 32, 1024) ||
    (c.workgroupSize != null && (c.workgroupSize & (c.workgroupSize - 1)) !== 0) ||
    !ok(c.maxWorkgroups, 1, 65535) ||
    (c.version != null && c.version !== 'v1' && c.version !== 'v2')
  ) {
    throw new InputError(
      `setElementwiseConfig: out of range ${JSON.stringify(c)} (items 1..16, workgroup a power of two in 32..1024, grid 1..65535).`,
    );
  }
  const prev = override;
  override = { ...override, ...c };
  return () => {
    override = prev;
  };
}
