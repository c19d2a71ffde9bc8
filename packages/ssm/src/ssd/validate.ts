import { assertFloat, check, fmtShape, InputError } from '@t2md/core';
import type { Tensor } from '@tensorflow/tfjs-core';
import {
  SSD_GEMM_TILES,
  SSD_VARIANTS,
  type SsdAttrs,
  type SsdGemmTile,
  type SsdScanInputs,
  type SsdScanOptions,
  type SsdVariant,
} from './types.js';

/** `value` when it is one of `choices`, else an InputError: "`what` must be one of …, got …; `mend`." */
function oneOf<T extends string>(what: string, value: unknown, choices: readonly T[], mend: string): T {
  if (!(choices as readonly unknown[]).includes(value)) {
    throw new InputError(`${what} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}; ${mend}.`);
  }
  return value as T;
}

/** The Node environment variable `name`, one of `choices`, or `fallback` when it is unset or empty. */
function envChoice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
  const raw = typeof process !== 'undefined' ? process.env?.[name] : undefined;
  return raw == null || raw === '' ? fallback : oneOf(name, raw, choices, `unset it for the default (${fallback})`);
}

let envVariant: SsdVariant | undefined;

/**
 * The forward variant used when the options name none: `T2MD_SSD_VARIANT` in Node (read once, so a
 * benchmark records what ran), else 'chunked'.
 */
export function ssdDefaultVariant(): SsdVariant {
  envVariant ??= envChoice('T2MD_SSD_VARIANT', SSD_VARIANTS, 'chunked');
  return envVariant;
}

let envGemmTile: SsdGemmTile | undefined;

/**
 * The GEMM micro-tile used when the options name none: `T2MD_SSD_GEMM_TILE` in Node (read once, so a
 * benchmark records what ran), else '4x4'.
 */
export function ssdDefaultGemmTile(): SsdGemmTile {
  envGemmTile ??= envChoice('T2MD_SSD_GEMM_TILE', SSD_GEMM_TILES, '4x4');
  return envGemmTile;
}

function expectShape(name: string, t: Tensor, want: readonly number[], letters: string, ref: string): void {
  const ok = t.shape.length === want.length && want.every((w, i) => w === t.shape[i]);
  if (!ok) {
    throw new InputError(`${name} must have shape ${fmtShape(want)} ([${letters}]) to match ${ref}, got ${fmtShape(t.shape)}.`);
  }
}

function expectRank(name: string, t: Tensor, rank: number, letters: string): void {
  check(t.shape.length === rank, () => `${name} must have rank ${rank} ([${letters}]), got shape ${fmtShape(t.shape)}.`);
}

/**
 * Checks the SSD inputs and options at the public boundary and turns the options into kernel attrs.
 * Every message names the argument, the shape it should have and the one it has.
 */
export function validateSsd(inputs: SsdScanInputs, options: SsdScanOptions): SsdAttrs {
  check(inputs != null && typeof inputs === 'object', 'ssdScan needs an object {x, dt, A, B, C, ...} as its first argument.');
  const { x, dt, A, B, C, D, z, dtBias, initialStates } = inputs;
  for (const [name, t] of [
    ['x', x],
    ['dt', dt],
    ['A', A],
    ['B', B],
    ['C', C],
  ] as const) {
    check(t != null, `${name} is required by ssdScan; pass a float32 tensor.`);
    assertFloat(name, t);
  }
  for (const [name, t] of [
    ['D', D],
    ['z', z],
    ['dtBias', dtBias],
    ['initialStates', initialStates],
  ] as const) {
    if (t != null) assertFloat(name, t);
  }
  expectRank('x', x, 4, 'batch, seqlen, nheads, headdim');
  const [b, l, h, p] = x.shape;
  const xs = `x ${fmtShape(x.shape)}`;
  expectRank('dt', dt, 3, 'batch, seqlen, nheads');
  expectShape('dt', dt, [b, l, h], 'batch, seqlen, nheads', xs);
  expectRank('A', A, 1, 'nheads');
  expectShape('A', A, [h], 'nheads', xs);
  expectRank('B', B, 4, 'batch, seqlen, ngroups, dstate');
  const [, , g, n] = B.shape;
  expectShape('B', B, [b, l, g, n], 'batch, seqlen, ngroups, dstate', xs);
  check(
    g >= 1 && h % g === 0,
    () => `nheads (${h}, from x ${fmtShape(x.shape)}) must be divisible by ngroups (${g}, from B ${fmtShape(B.shape)}).`,
  );
  expectRank('C', C, 4, 'batch, seqlen, ngroups, dstate');
  expectShape('C', C, [b, l, g, n], 'batch, seqlen, ngroups, dstate', `x ${fmtShape(x.shape)} and B ${fmtShape(B.shape)}`);
  if (D != null) {
    const ok = (D.shape.length === 1 && D.shape[0] === h) || (D.shape.length === 2 && D.shape[0] === h && D.shape[1] === p);
    check(
      ok,
      () =>
        `D must have shape [${h}] ([nheads]) or [${h}, ${p}] ([nheads, headdim]) to match x ${fmtShape(x.shape)}, got ${fmtShape(D.shape)}.`,
    );
  }
  if (z != null) expectShape('z', z, x.shape, 'batch, seqlen, nheads, headdim', xs);
  if (dtBias != null) expectShape('dtBias', dtBias, [h], 'nheads', xs);
  if (initialStates != null) {
    expectShape(
      'initialStates',
      initialStates,
      [b, h, p, n],
      'batch, nheads, headdim, dstate',
      `x ${fmtShape(x.shape)} and B ${fmtShape(B.shape)}`,
    );
  }

  const chunkSize = options.chunkSize ?? 256;
  check(
    typeof chunkSize === 'number' && Number.isInteger(chunkSize) && chunkSize >= 1 && chunkSize <= 4096,
    () => `chunkSize must be an integer in [1, 4096], got ${String(chunkSize)}.`,
  );
  const variant = oneOf('variant', options.variant ?? ssdDefaultVariant(), SSD_VARIANTS, 'leave it out for the default');
  const segmentChunks = options.segmentChunks ?? 0;
  check(
    typeof segmentChunks === 'number' && Number.isInteger(segmentChunks) && segmentChunks >= 0,
    () => `segmentChunks must be an integer >= 0 (0 picks it from the shape), got ${String(segmentChunks)}.`,
  );
  const gemmTile = oneOf('gemmTile', options.gemmTile ?? ssdDefaultGemmTile(), SSD_GEMM_TILES, 'leave it out for the default');
  const lim = options.dtLimit ?? [0, null];
  check(
    Array.isArray(lim) && lim.length === 2 && typeof lim[0] === 'number' && (lim[1] === null || typeof lim[1] === 'number'),
    () => `dtLimit must be [min, max] with max a number or null (for +infinity), got ${JSON.stringify(lim)}.`,
  );
  const dtMin = lim[0];
  const dtMax = lim[1] === null ? Number.POSITIVE_INFINITY : lim[1];
  check(!Number.isNaN(dtMin) && !Number.isNaN(dtMax) && dtMin <= dtMax, () => `dtLimit must have min <= max, got ${JSON.stringify(lim)}.`);
  return {
    chunkSize,
    dtSoftplus: options.dtSoftplus === true,
    // mamba_ssm skips the clamp for its default limit (0, inf): dt may stay negative without softplus.
    dtClamp: !(dtMin === 0 && dtMax === Number.POSITIVE_INFINITY),
    dtMin,
    dtMax,
    hasD: D != null,
    dPerChannel: D != null && D.shape.length === 2,
    hasZ: z != null,
    hasBias: dtBias != null,
    hasInit: initialStates != null,
    returnFinal: options.returnFinalStates === true,
    variant,
    segmentChunks,
    gemmTile,
  };
}
