/**
 * What the SSD scan tests share: the random cases of the WebGPU tests (ssd.test.ts, segmented.test.ts;
 * a case's shapes, which optional inputs it has, and the ranges of A and the raw dt), their inputs, and
 * the float64 recurrence of cpu.ts as the reference (also host.test.ts).
 */
import { randomTensor } from '@t2md/core/testing';
import type * as tf from '@tensorflow/tfjs-core';
import { ssdForwardValues } from './cpu.js';
import { dimsOf, type SsdScanInputs, type SsdScanOptions } from './types.js';
import { validateSsd } from './validate.js';

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

// Small on purpose: WebGPU runs on SwiftShader in CI.
export const SSD_CASES: readonly SsdCase[] = [
  {
    name: 'L not a multiple of the chunk, softplus + bias',
    B: 2,
    L: 23,
    H: 2,
    P: 4,
    G: 1,
    N: 8,
    opts: { chunkSize: 8, dtSoftplus: true },
    bias: true,
    A: [-3, -0.5],
    dt: [-3, 0],
  },
  {
    name: 'ngroups 2, initial states, D per channel, z, dtLimit',
    B: 1,
    L: 21,
    H: 4,
    P: 8,
    G: 2,
    N: 4,
    opts: { chunkSize: 16, dtSoftplus: true, dtLimit: [0.02, 0.3] },
    D: 'channel',
    z: true,
    bias: true,
    init: true,
    A: [-4, -1],
    dt: [-4, 0],
  },
  {
    name: 'strong decay (A = -50, large dt), D per head',
    B: 1,
    L: 19,
    H: 2,
    P: 4,
    G: 1,
    N: 4,
    opts: { chunkSize: 8, dtLimit: [0, null] },
    D: 'head',
    init: true,
    A: [-60, -40],
    dt: [0.5, 3],
  },
];

/** The float64 recurrence of cpu.ts on the inputs' values: y and the final states. */
export async function float64Forward(inp: SsdScanInputs, opts: SsdScanOptions): Promise<{ y: Float32Array; finalStates: Float32Array }> {
  const v = async (t: tf.Tensor | undefined) => (t ? ((await t.data()) as Float32Array) : new Float32Array(1));
  const arrays = {
    x: await v(inp.x),
    dt: await v(inp.dt),
    A: await v(inp.A),
    B: await v(inp.B),
    C: await v(inp.C),
    D: await v(inp.D),
    z: await v(inp.z),
    dtBias: await v(inp.dtBias),
    initialStates: await v(inp.initialStates),
  };
  return ssdForwardValues(arrays, dimsOf(inp.x.shape, inp.B.shape), validateSsd(inp, { ...opts, returnFinalStates: true }));
}
