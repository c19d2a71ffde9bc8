import { availableParallelism } from 'node:os';
import { HostOps } from '@t2md/core';
import { describeInfo, freshSeed, randomTensor, relErr, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { setWasmSimdScan, wasmSimdScanThreads } from '../testing.js';
import { ssdScan } from './index.js';
import { float64Forward, type SsdCase } from './test-cases.js';

/** A case of the shared shape, without a name, and with its own dt range (below). */
type Case = Omit<SsdCase, 'name' | 'dt' | 'bias'>;

// on wasm chunks take up to MIN_HOST_CHUNK (128) tokens whatever chunkSize says, cut to even lengths
// (300 tokens: 100 + 100 + 100, not 128 + 128 + 44);
// groups; every optional input; decays strong enough that chunks end early (MAX_DECAY), down to one token
const CASES: Case[] = [
  { B: 1, L: 300, H: 2, P: 3, G: 1, N: 4, opts: { chunkSize: 64, dtSoftplus: true }, D: 'head', init: true, A: [-0.1, -0.01] },
  { B: 2, L: 140, H: 4, P: 2, G: 2, N: 3, opts: { chunkSize: 256, dtSoftplus: true }, z: true, A: [-0.2, -0.05] },
  { B: 2, L: 37, H: 4, P: 5, G: 1, N: 6, opts: { chunkSize: 16, dtSoftplus: true }, D: 'head', A: [-3, -0.2] },
  {
    B: 1,
    L: 30,
    H: 6,
    P: 3,
    G: 3,
    N: 4,
    opts: { chunkSize: 7, dtSoftplus: true, dtLimit: [0.01, 0.4] },
    D: 'channel',
    z: true,
    init: true,
    A: [-6, -1],
  },
  { B: 2, L: 9, H: 2, P: 4, G: 2, N: 8, opts: { chunkSize: 64 }, init: true, A: [-1, -0.1] },
  { B: 1, L: 5, H: 2, P: 2, G: 1, N: 3, opts: { chunkSize: 1, dtSoftplus: true }, z: true, A: [-40, -20] },
  { B: 2, L: 70, H: 3, P: 4, G: 1, N: 5, opts: { chunkSize: 64, dtSoftplus: true }, init: true, A: [-8, -4] },
  { B: 1, L: 21, H: 2, P: 3, G: 1, N: 4, opts: { chunkSize: 16, dtSoftplus: true }, D: 'head', A: [-90, -50] },
  // ~0.7 of decay a token: a 128-token chunk spans 60–120 of it, which on wasm α centred in the chunk allows (e^{±60})
  { B: 1, L: 200, H: 2, P: 3, G: 1, N: 4, opts: { chunkSize: 64, dtSoftplus: true }, D: 'head', A: [-1.2, -0.9] },
  // the shapes student's sequences: 256 tokens, heads of weak and strong decay (chunks cut by the
  // decay, then evened), several heads sharing each product
  { B: 2, L: 256, H: 4, P: 4, G: 1, N: 16, opts: { chunkSize: 64, dtSoftplus: true }, D: 'head', A: [-16, -2] },
  // the SIMD scan's channel blocks: P of 32 (the shapes student's heads, N 64), 64 (two blocks of
  // 32), 16, 8 and 12 (three blocks of 4), with groups and every optional input
  { B: 2, L: 256, H: 8, P: 32, G: 1, N: 64, opts: { chunkSize: 64, dtSoftplus: true }, D: 'head', A: [-8, -0.05] },
  { B: 1, L: 40, H: 2, P: 64, G: 2, N: 8, opts: { chunkSize: 16, dtSoftplus: true }, D: 'channel', init: true, A: [-2, -0.1] },
  {
    B: 2,
    L: 33,
    H: 4,
    P: 16,
    G: 2,
    N: 12,
    opts: { chunkSize: 8, dtSoftplus: true, dtLimit: [0.01, 0.4] },
    z: true,
    init: true,
    A: [-4, -1],
  },
  { B: 1, L: 50, H: 3, P: 8, G: 3, N: 5, opts: { chunkSize: 64 }, D: 'head', z: true, A: [-1, -0.1] },
  { B: 1, L: 17, H: 2, P: 12, G: 1, N: 7, opts: { chunkSize: 4, dtSoftplus: true }, D: 'channel', init: true, A: [-30, -5] },
];

const dataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();

// on wasm the SIMD recurrence (simd-scan.ts) runs where P is a multiple of 4, the chunked form
// elsewhere; with it turned off the chunked form runs everywhere
describe.each([
  ['cpu', 'chunked matrix form', false],
  ['wasm', 'chunked matrix form', false],
  ['wasm', 'SIMD recurrence', true],
] as const)('ssdScan forward on %s, %s', (name, form, simd) => {
  it('matches the float64 recurrence (y and finalStates) on fresh random inputs, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    console.log(`ssd host (${form}): ${describeInfo(info)}, seed ${seed}`);
    setWasmSimdScan(simd);
    if (simd) await secondThreadStarted();
    try {
      await compareCases(name, form, seed);
    } finally {
      setWasmSimdScan(true);
    }
  });
});

/**
 * The SIMD scan runs here, and on a shared heap (Node's threaded build, 2+ cores) its second thread
 * has started: the first call starts it, later calls split their pairs with it.
 */
async function secondThreadStarted(): Promise<void> {
  const memory = new HostOps(tf.backend()).heapMemory();
  expect(memory, 'the wasm heap a SIMD module can import').toBeInstanceOf(WebAssembly.Memory);
  const two = memory!.buffer instanceof SharedArrayBuffer && availableParallelism() >= 2;
  const x = tf.zeros([2, 3, 1, 4]);
  const [dt, A, bc] = [tf.zeros([2, 3, 1]), tf.zeros([1]), tf.zeros([2, 3, 1, 4])];
  tf.dispose(ssdScan({ x, dt, A, B: bc, C: bc }).y);
  tf.dispose([x, dt, A, bc]);
  for (let i = 0; i < 600 && two && wasmSimdScanThreads(tf.backend()) < 2; i++) await new Promise((r) => setTimeout(r, 50));
  expect(wasmSimdScanThreads(tf.backend()), 'threads of the SIMD scan').toBe(two ? 2 : 1);
}

async function compareCases(name: string, form: string, seed: number): Promise<void> {
  for (const [ci, c] of CASES.entries()) {
    let k = 1000 * ci;
    const r = (shape: number[], lo: number, hi: number) => randomTensor(shape, seed + 7919 * ++k, lo, hi);
    const inp = {
      x: r([c.B, c.L, c.H, c.P], -1, 1),
      // Without softplus, dt + dtBias is the step itself and must be positive, as Mamba's is: a negative
      // step grows the state by exp(|dt·A|) per token, which overflows float32 in any exact form.
      dt: c.opts.dtSoftplus ? r([c.B, c.L, c.H], -3, 1) : r([c.B, c.L, c.H], 0.01, 0.5),
      A: r([c.H], c.A[0], c.A[1]),
      B: r([c.B, c.L, c.G, c.N], -1, 1),
      C: r([c.B, c.L, c.G, c.N], -1, 1),
      dtBias: c.opts.dtSoftplus ? r([c.H], -1, 1) : r([c.H], 0, 0.5),
      ...(c.D ? { D: r(c.D === 'head' ? [c.H] : [c.H, c.P], 0.5, 1.5) } : {}),
      ...(c.z ? { z: r([c.B, c.L, c.H, c.P], -2, 2) } : {}),
      ...(c.init ? { initialStates: r([c.B, c.H, c.P, c.N], -1, 1) } : {}),
    };
    const want = await float64Forward(inp, c.opts);
    const before = dataIds();
    await withNoLeaks(async () => {
      const got = ssdScan(inp, { ...c.opts, returnFinalStates: true });
      const ey = relErr(await got.y.data(), want.y);
      const ef = relErr(await got.finalStates!.data(), want.finalStates);
      console.log(`ssd host ${name} (${form}) case ${ci}: y ${ey.toExponential(2)}, finalStates ${ef.toExponential(2)}`);
      expect(ey, `case ${ci} y, seed ${seed}`).toBeLessThan(2e-6);
      expect(ef, `case ${ci} finalStates, seed ${seed}`).toBeLessThan(2e-6);
      // without finalStates the last chunk leaves out the next state's rows: the same y
      const yOnly = ssdScan(inp, c.opts).y;
      expect(relErr(await yOnly.data(), want.y), `case ${ci} y without finalStates, seed ${seed}`).toBeLessThan(2e-6);
      tf.dispose([got.y, got.finalStates!, yOnly]);
    });
    expect(dataIds(), `backend data after case ${ci}`).toBe(before);
    tf.dispose(Object.values(inp));
  }
}
