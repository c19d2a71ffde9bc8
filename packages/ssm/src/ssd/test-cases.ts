/**
 * The random SSD scan cases the WebGPU tests share (ssd.test.ts, segmented.test.ts): a case's shapes,
 * which optional inputs it has, and the ranges of A and the raw dt.
 */
import { randomTensor } from '@t2md/core/testing';
import type { SsdScanInputs, SsdScanOptions } from './types.js';

export interface SsdCase {
  name: string;
  B: number;
  L: number;
  H: number;
  P: number;
  G: number;
  N: number;
  opts: SsdScanOptions;
  D?: 'head' | 'channel';
  z?: boolean;
  bias?: boolean;
  init?: boolean;
  /** A range and dt range (raw) */
  A: [number, number];
  dt: [number, number];
}

/** Fresh inputs of a case from `seed`: x, dt, A, B, C and the optional ones the case names. */
export function makeSsdInputs(c: SsdCase, seed: number): SsdScanInputs {
  let k = 0;
  const r = (shape: number[], lo: number, hi: number) => randomTensor(shape, seed + 7919 * ++k, lo, hi);
  const inp: SsdScanInputs = {
    x: r([c.B, c.L, c.H, c.P], -1, 1),
    dt: r([c.B, c.L, c.H], c.dt[0], c.dt[1]),
    A: r([c.H], c.A[0], c.A[1]),
    B: r([c.B, c.L, c.G, c.N], -1, 1),
    C: r([c.B, c.L, c.G, c.N], -1, 1),
  };
  if (c.D) inp.D = r(c.D === 'head' ? [c.H] : [c.H, c.P], 0.5, 1.5);
  if (c.z) inp.z = r([c.B, c.L, c.H, c.P], -2, 2);
  if (c.bias) inp.dtBias = r([c.H], -1, 1);
  if (c.init) inp.initialStates = r([c.B, c.H, c.P, c.N], -1, 1);
  return inp;
}
