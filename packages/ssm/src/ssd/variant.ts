import { InputError } from '@t2md/core';

/**
 * Which WebGPU kernels ssdScan runs: `v1` (64×64 blocks, 4×4 per thread, every pass as first written)
 * (the default) or `v2` (8×8 register tiles on the heavy forward GEMMs, the final-state copy only when
 * asked). Read from `T2MD_SSD_KERNELS` on every call, so one process can A/B both. v1 stays the default
 * because it measured faster on the H100 (2026-11-26, L = 16384, 36 × 64, d_state 256, GPU time of the
 * forward's passes: v1 3.4 ms at chunk 128 and 3.9 ms at chunk 64, v2 4.9 and 5.3 ms): the 8×8 tiles
 * halve the workgroups and the occupancy that hides the loads' latency.
 */
export type SsdKernelsVariant = 'v1' | 'v2';

export function ssdKernelsVariant(): SsdKernelsVariant {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const v = env?.T2MD_SSD_KERNELS?.trim();
  if (v == null || v === '') return 'v1';
  if (v === 'v1' || v === 'v2') return v;
  throw new InputError(`T2MD_SSD_KERNELS must be 'v1' or 'v2', got '${v}'; unset it for the default (v1).`);
}

/** A v2 GEMM tile: block bm×bn, bk deep, each thread tm×tn (see ./webgpu-gemm2.ts). */
export interface GemmTile {
  bm: number;
  bn: number;
  tm: number;
  tn: number;
  bk: number;
}

/**
 * Optional v2 tile override for the lead's GPU sweeps, read per call: `T2MD_SSD_TILES` such as
 * `states=64x128x8x8x16,y=64x64x8x8x16` (bm x bn x tm x tn x bk); either part may be left out.
 * Returns only the parts given.
 */
export function ssdTileOverride(): { states?: GemmTile; y?: GemmTile } {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const raw = env?.T2MD_SSD_TILES?.trim();
  if (!raw) return {};
  const out: { states?: GemmTile; y?: GemmTile } = {};
  for (const part of raw.split(',')) {
    const m = /^(states|y)=(\d+)x(\d+)x(\d+)x(\d+)x(\d+)$/.exec(part.trim());
    if (!m) throw new InputError(`T2MD_SSD_TILES: '${part}' is not pass=BMxBNxTMxTNxBK (pass states or y), e.g. states=64x128x8x8x16.`);
    const [bm, bn, tm, tn, bk] = m.slice(2).map(Number) as [number, number, number, number, number];
    const threads = (bm / tm) * (bn / tn);
    const ok =
      tm % 4 === 0 &&
      tn % 4 === 0 &&
      bm % tm === 0 &&
      bn % tn === 0 &&
      Number.isInteger(threads) &&
      threads <= 256 &&
      ((bm * bk) / threads) % 1 === 0 &&
      ((bn * bk) / threads) % 1 === 0 &&
      (bm + bn) * bk * 4 <= 16384;
    if (!ok) {
      throw new InputError(
        `T2MD_SSD_TILES: ${part} needs tm, tn multiples of 4 dividing bm, bn; at most 256 threads dividing bm·bk and bn·bk; (bm + bn)·bk·4 <= 16384 bytes.`,
      );
    }
    out[m[1] as 'states' | 'y'] = { bm, bn, tm, tn, bk };
  }
  return out;
}
