import { assertInt, check } from '@t2md/core';

/**
 * Settings of a Mamba-2 mixer, named as mamba_ssm's `Mamba2` (d_model, d_state, expand, headdim,
 * ngroups, d_conv, chunk_size, dt_min, dt_max, dt_limit). A plain data object (configs are data).
 */
export interface Mamba2Config {
  /** Model width D (input and output channels). */
  dModel: number;
  /** SSM state size N (default 256, T2MD's setting; mamba_ssm's default is 128). */
  dState?: number;
  /** d_inner = expand * dModel (default 2). */
  expand?: number;
  /** Head dim P (default 64); nheads = d_inner / headdim. */
  headdim?: number;
  /** Groups G sharing B and C (default 1). */
  ngroups?: number;
  /** Causal depthwise conv kernel width (default 4). */
  dConv?: number;
  /** SSD chunk length (default 64). */
  chunkSize?: number;
  /** dt is initialised log-uniform in [dtMin, dtMax] (defaults 1e-3, 1e-1). */
  dtMin?: number;
  dtMax?: number;
  /** Floor of the initial dt (default 1e-4). */
  dtInitFloor?: number;
  /** Clamp of softplus(dt + dt_bias) in the scan: `[min, max]`, max `null` = +inf (default `[0, null]`: no clamp). */
  dtLimit?: [number, number | null];
  /** A = -U[lo, hi] at init (default `[1, 16]`). */
  aInitRange?: [number, number];
  /** eps of the gated RMSNorm (default 1e-5). */
  normEps?: number;
}

/** The sizes that follow from a config. */
export interface Mamba2Dims {
  /** d_inner = expand * dModel */
  dInner: number;
  /** nheads = dInner / headdim */
  nheads: number;
  /** channels of the conv: x, B and C = dInner + 2 * ngroups * dState */
  convDim: number;
  /** rows of in_proj: z, xBC, dt = 2 * dInner + 2 * ngroups * dState + nheads */
  dInProj: number;
}

export const MAMBA2_DEFAULTS = {
  dState: 256,
  expand: 2,
  headdim: 64,
  ngroups: 1,
  dConv: 4,
  chunkSize: 64,
  dtMin: 1e-3,
  dtMax: 1e-1,
  dtInitFloor: 1e-4,
  dtLimit: [0, null] as [number, number | null],
  aInitRange: [1, 16] as [number, number],
  normEps: 1e-5,
} as const;

/** Fills in the defaults and checks that the sizes fit together; throws an InputError naming the field. */
export function resolveMamba2Config(config: Mamba2Config): Required<Mamba2Config> {
  check(config != null && typeof config === 'object', 'config must be an object such as {dModel: 256}.');
  const c: Required<Mamba2Config> = {
    ...MAMBA2_DEFAULTS,
    dtLimit: [...MAMBA2_DEFAULTS.dtLimit],
    aInitRange: [...MAMBA2_DEFAULTS.aInitRange],
    ...stripUndefined(pick(config, MAMBA2_KEYS)),
  } as Required<Mamba2Config>;
  assertInt('config.dModel', c.dModel, 1);
  assertInt('config.dState', c.dState, 1);
  assertInt('config.headdim', c.headdim, 1);
  assertInt('config.ngroups', c.ngroups, 1);
  assertInt('config.dConv', c.dConv, 1);
  assertInt('config.chunkSize', c.chunkSize, 1);
  check(typeof c.expand === 'number' && c.expand > 0, () => `config.expand must be a positive number, got ${String(c.expand)}.`);
  const dInner = c.expand * c.dModel;
  check(
    Number.isInteger(dInner) && dInner % c.headdim === 0,
    () =>
      `config.expand * config.dModel (${c.expand} * ${c.dModel} = ${dInner}) must be an integer multiple of config.headdim (${c.headdim}).`,
  );
  const nheads = dInner / c.headdim;
  check(
    nheads % c.ngroups === 0,
    () => `nheads (${nheads} = d_inner ${dInner} / headdim ${c.headdim}) must be divisible by config.ngroups (${c.ngroups}).`,
  );
  check(
    c.dtMin > 0 && c.dtMax >= c.dtMin && c.dtInitFloor >= 0,
    () => `config.dtMin/dtMax must satisfy 0 < dtMin <= dtMax, got ${c.dtMin}, ${c.dtMax}.`,
  );
  check(
    Array.isArray(c.dtLimit) && c.dtLimit.length === 2 && c.dtLimit[0] >= 0 && (c.dtLimit[1] == null || c.dtLimit[1] > c.dtLimit[0]),
    () => `config.dtLimit must be [min, max] with 0 <= min < max (max null for +infinity), got ${JSON.stringify(c.dtLimit)}.`,
  );
  check(
    Array.isArray(c.aInitRange) && c.aInitRange.length === 2 && c.aInitRange[0] > 0 && c.aInitRange[1] >= c.aInitRange[0],
    () => `config.aInitRange must be [lo, hi] with 0 < lo <= hi, got ${JSON.stringify(c.aInitRange)}.`,
  );
  check(c.normEps > 0, () => `config.normEps must be positive, got ${c.normEps}.`);
  return c;
}

/** The derived sizes of a resolved config. */
export function mamba2Dims(c: Required<Mamba2Config>): Mamba2Dims {
  const dInner = c.expand * c.dModel;
  const nheads = dInner / c.headdim;
  const convDim = dInner + 2 * c.ngroups * c.dState;
  return { dInner, nheads, convDim, dInProj: dInner + convDim + nheads };
}

/** The state-dict names and PyTorch layouts of a Mamba-2 mixer (mamba_ssm's `Mamba2` with rmsnorm, no biases). */
export function mamba2WeightShapes(c: Required<Mamba2Config>): Record<string, number[]> {
  const { dInner, nheads, convDim, dInProj } = mamba2Dims(c);
  return {
    'in_proj.weight': [dInProj, c.dModel],
    'conv1d.weight': [convDim, 1, c.dConv],
    'conv1d.bias': [convDim],
    dt_bias: [nheads],
    A_log: [nheads],
    D: [nheads],
    'norm.weight': [dInner],
    'out_proj.weight': [c.dModel, dInner],
  };
}

const MAMBA2_KEYS: readonly (keyof Mamba2Config)[] = [
  'dModel',
  'dState',
  'expand',
  'headdim',
  'ngroups',
  'dConv',
  'chunkSize',
  'dtMin',
  'dtMax',
  'dtInitFloor',
  'dtLimit',
  'aInitRange',
  'normEps',
];

/** Only the Mamba-2 fields (a wrapper's config extends this one; its extra fields stay out of the mixer's). */
function pick(o: Mamba2Config, keys: readonly (keyof Mamba2Config)[]): Mamba2Config {
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = o[k];
  return out as unknown as Mamba2Config;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
