import { describeInfo, freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { ssdGradBound, ssdGradError } from './grad-error.js';
import { ssdScan } from './index.js';
import { setSsdBindingLimitForTests } from './limit.js';
import { ssdScanRef } from './reference.js';
import type { SsdCase } from './test-cases.js';
import { SSD_GEMM_TILES, type SsdScanInputs, type SsdScanOptions } from './types.js';

/** Raw arrays of one case, so the reference (cpu) and the kernels (webgpu) read the same numbers. */
type Arrays = Record<string, { shape: number[]; data: Float32Array }>;

interface Shape extends Pick<SsdCase, 'name' | 'B' | 'L' | 'H' | 'P' | 'G' | 'N' | 'opts'> {
  extras?: boolean;
}

// Shapes that stress the GEMM passes' 64×64 tiles: P = 64 and 48 (a partial column block), N = 16 / 64 /
// 256, Q below, at and above the 64-row block, and L never a multiple of the chunk. Small L: WebGPU runs
// on SwiftShader here.
const SHAPES: Shape[] = [
  { name: 'P 64, N 256, Q 32, L 70', B: 1, L: 70, H: 2, P: 64, G: 1, N: 256, opts: { chunkSize: 32, dtSoftplus: true } },
  {
    name: 'P 48, N 64, G 2, Q 64, L 100, z + D per channel + init + bias + dtLimit',
    B: 1,
    L: 100,
    H: 4,
    P: 48,
    G: 2,
    N: 64,
    opts: { chunkSize: 64, dtSoftplus: true, dtLimit: [0.01, 0.5] },
    extras: true,
  },
  { name: 'P 64, N 16, Q 128, L 150, batch 2', B: 2, L: 150, H: 1, P: 64, G: 1, N: 16, opts: { chunkSize: 128, dtSoftplus: true } },
];

// Every GEMM micro-tile (SsdScanOptions.gemmTile) at sizes that are multiples of neither the 64×64
// output tile nor the K-tile of 16, with several K segments (the backward's dcb, dB and dC sum over the
// heads of a group) and two row tiles of a chunk (the triangular tileLive, kBeg and kEnd).
const TILE_SHAPES: Shape[] = [
  {
    name: 'P 72, N 80, G 2 (2 heads a group), Q 40, L 150, batch 2, z + D per channel + init + bias + dtLimit',
    B: 2,
    L: 150,
    H: 4,
    P: 72,
    G: 2,
    N: 80,
    opts: { chunkSize: 40, dtSoftplus: true, dtLimit: [0.01, 0.5] },
    extras: true,
  },
  {
    name: 'P 20, N 100, H 3 (3 heads a group), Q 72, L 200',
    B: 1,
    L: 200,
    H: 3,
    P: 20,
    G: 1,
    N: 100,
    opts: { chunkSize: 72, dtSoftplus: true },
  },
];

function makeArrays(s: Shape, seed: number): Arrays {
  let k = 0;
  const r = (shape: number[], lo: number, hi: number) => ({
    shape,
    data: randomArray(
      shape.reduce((a, b) => a * b, 1),
      seed + 7919 * ++k,
      lo,
      hi,
    ),
  });
  const a: Arrays = {
    x: r([s.B, s.L, s.H, s.P], -1, 1),
    dt: r([s.B, s.L, s.H], -4, 0),
    A: r([s.H], -6, -0.5),
    B: r([s.B, s.L, s.G, s.N], -1, 1),
    C: r([s.B, s.L, s.G, s.N], -1, 1),
  };
  if (s.extras) {
    a.D = r([s.H, s.P], 0.5, 1.5);
    a.z = r([s.B, s.L, s.H, s.P], -2, 2);
    a.dtBias = r([s.H], -1, 1);
    a.initialStates = r([s.B, s.H, s.P, s.N], -1, 1);
  }
  a.wy = r([s.B, s.L, s.H, s.P], -1, 1);
  a.wf = r([s.B, s.H, s.P, s.N], -1, 1);
  return a;
}

const inputNames = (a: Arrays) => Object.keys(a).filter((k) => k !== 'wy' && k !== 'wf');

/** y and finalStates alone, read back. */
async function forward(a: Arrays, opts: SsdScanOptions): Promise<Record<string, Float32Array>> {
  const ts = Object.fromEntries(inputNames(a).map((k) => [k, tf.tensor(a[k]!.data, a[k]!.shape)]));
  try {
    const o = ssdScan(ts as unknown as SsdScanInputs, { ...opts, returnFinalStates: true });
    const out = { y: (await o.y.data()) as Float32Array, finalStates: (await o.finalStates!.data()) as Float32Array };
    tf.dispose([o.y, o.finalStates!]);
    return out;
  } finally {
    tf.dispose(Object.values(ts));
  }
}

/** y, finalStates and the gradient of Σ y·wy + Σ finalStates·wf in every input, read back. */
async function evaluate(op: typeof ssdScan, a: Arrays, opts: SsdScanOptions): Promise<Record<string, Float32Array>> {
  const names = inputNames(a);
  const ts = Object.fromEntries(Object.entries(a).map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
  const asInputs = (xs: tf.Tensor[]) => Object.fromEntries(names.map((k, i) => [k, xs[i]])) as unknown as SsdScanInputs;
  try {
    return await run(op, names, ts, opts, asInputs);
  } finally {
    tf.dispose(Object.values(ts));
  }
}

async function run(
  op: typeof ssdScan,
  names: string[],
  ts: Record<string, tf.Tensor>,
  opts: SsdScanOptions,
  asInputs: (xs: tf.Tensor[]) => SsdScanInputs,
): Promise<Record<string, Float32Array>> {
  const o = op(asInputs(names.map((k) => ts[k]!)), { ...opts, returnFinalStates: true });
  const loss = (...xs: tf.Tensor[]) => {
    const r = op(asInputs(xs), { ...opts, returnFinalStates: true });
    return tf.add(tf.sum(tf.mul(r.y, ts.wy!)), tf.sum(tf.mul(r.finalStates!, ts.wf!)));
  };
  const grads = tf.grads(loss)(names.map((k) => ts[k]!));
  const out: Record<string, Float32Array> = {
    y: (await o.y.data()) as Float32Array,
    finalStates: (await o.finalStates!.data()) as Float32Array,
  };
  for (let i = 0; i < names.length; i++) out[`d${names[i]}`] = (await grads[i]!.data()) as Float32Array;
  tf.dispose([o.y, o.finalStates!, ...grads]);
  return out;
}

/** What ssdGradError needs besides the two gradients: the inputs and the reference's dx and ddt. */
function gradSums(s: Shape, a: Arrays, ref: Record<string, Float32Array>) {
  return {
    x: a.x!.data,
    dt: a.dt!.data,
    A: a.A!.data,
    dtBias: a.dtBias?.data,
    dx: ref.dx!,
    ddt: ref.ddt!,
    H: s.H,
    P: s.P,
    dtSoftplus: s.opts.dtSoftplus === true,
  };
}

/**
 * For each shape: fresh arrays (one seed per test, logged), the reference's outputs and gradients on cpu,
 * then `body` with the webgpu backend active.
 */
async function eachWithReference(
  ctx: Parameters<typeof useBackend>[1],
  label: string,
  shapes: Shape[],
  body: (s: Shape, a: Arrays, ref: Record<string, Float32Array>, seed: number) => Promise<void>,
): Promise<void> {
  const gpu = await useBackend('webgpu', ctx);
  const seed = freshSeed();
  console.log(`${label}: ${describeInfo(gpu)}, seed ${seed}`);
  for (const s of shapes) {
    const a = makeArrays(s, seed);
    await useBackend('cpu', ctx);
    const ref = await evaluate(ssdScanRef, a, s.opts);
    await useBackend('webgpu', ctx);
    await body(s, a, ref, seed);
  }
}

describe('ssdScan WebGPU kernels vs the tfjs-ops reference (computed on cpu)', () => {
  it('agree on fresh random inputs at shapes that stress the GEMM tiles, forward and every gradient, without leaking', async (ctx) => {
    await eachWithReference(ctx, 'ssd stress shapes', SHAPES, async (s, a, ref, seed) => {
      const got = await withNoLeaks(() => evaluate(ssdScan, a, s.opts));
      const errs: string[] = [];
      const sums = gradSums(s, a, ref);
      for (const k of Object.keys(ref)) {
        const e = k.startsWith('d') ? ssdGradError(k.slice(1), got[k]!, ref[k]!, sums) : relErr(got[k]!, ref[k]!);
        errs.push(`${k} ${e.toExponential(1)}`);
        expect(Number.isFinite(e), `${s.name}: ${k} finite`).toBe(true);
        expect(e, `${s.name}: ${k} (seed ${seed})`).toBeLessThan(k.startsWith('d') ? ssdGradBound(k.slice(1)) : 1e-4);
      }
      console.log(`  ${s.name}: ${errs.join(', ')}`);
    });
  }, 600_000);
});

describe('ssdScan WebGPU GEMM micro-tiles', () => {
  it('each agree with the reference (computed on cpu) and with the 4x4 tile, forward (both variants) and every gradient, without leaking', async (ctx) => {
    await eachWithReference(ctx, 'ssd GEMM tiles', TILE_SHAPES, async (s, a, ref, seed) => {
      const sums = gradSums(s, a, ref);
      let base: Record<string, Float32Array> | undefined;
      for (const gemmTile of SSD_GEMM_TILES) {
        const chunked = await withNoLeaks(() => evaluate(ssdScan, a, { ...s.opts, gemmTile }));
        // the segmented forward's GEMMs carry the state over segments (carry, segLive, segEpilogue)
        const seg = await withNoLeaks(() => forward(a, { ...s.opts, gemmTile, variant: 'segmented', segmentChunks: 2 }));
        const got = { ...chunked, ySeg: seg.y, finalStatesSeg: seg.finalStates };
        base ??= got;
        const errs: string[] = [];
        let same = 0;
        for (const k of Object.keys(got) as (keyof typeof got)[]) {
          const r = ref[k.replace('Seg', '')]!;
          const e = k.startsWith('d') ? ssdGradError(k.slice(1), got[k], r, sums) : relErr(got[k], r);
          const bound = k.startsWith('d') ? ssdGradBound(k.slice(1)) : 1e-4;
          const tag = `${s.name}, tile ${gemmTile}: ${k} (seed ${seed})`;
          expect(Number.isFinite(e), `${tag} finite`).toBe(true);
          expect(e, tag).toBeLessThan(bound);
          // the same sums in the same order as the 4x4 kernel: equal up to the compiler's FMA contraction
          expect(relErr(got[k], base[k]), `${tag} vs 4x4`).toBeLessThan(1e-6);
          if (got[k].every((v, i) => Object.is(v, base![k][i]))) same++;
          errs.push(`${k} ${e.toExponential(1)}`);
        }
        console.log(`  ${s.name}, ${gemmTile}: ${errs.join(', ')}; ${same}/${Object.keys(got).length} bit-equal to 4x4`);
      }
    });
    // the tiles' own programs ran (keyed apart from the 4x4 ones)
    const keys = Object.keys((tf.backend() as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache);
    for (const t of SSD_GEMM_TILES.filter((t) => t !== '4x4')) {
      for (const k of ['states', 'y_ip', 'states_seg', 'y_seg', 'gy', 'dcb', 'dB', 'dC']) {
        expect(
          keys.some((key) => key.startsWith(`t2md_ssd_gemm_${k}_t${t}`)),
          `a pipeline t2md_ssd_gemm_${k}_t${t}*`,
        ).toBe(true);
      }
    }
  }, 600_000);
});

describe.each(testBackends())('ssdScan batch split (binding limit lowered) on %s', (backend) => {
  afterEach(() => setSsdBindingLimitForTests(null));

  it('gives the unsplit result, forward and gradients, at 1 and 2 sequences per call', async (ctx) => {
    await useBackend(backend, ctx);
    const s: Shape = { name: 'split', B: 3, L: 21, H: 2, P: 8, G: 1, N: 4, opts: { chunkSize: 8, dtSoftplus: true }, extras: true };
    const seed = freshSeed();
    const a = makeArrays(s, seed);
    const whole = await withNoLeaks(() => evaluate(ssdScan, a, s.opts));
    // the chunk-state buffer of one sequence: (ceil(L / Q) + 1) · H · P · N floats
    const perSeq = (Math.ceil(s.L / 8) + 1) * s.H * s.P * s.N * 4;
    for (const per of [1, 2]) {
      setSsdBindingLimitForTests(per * perSeq + 4);
      const split = await withNoLeaks(() => evaluate(ssdScan, a, s.opts));
      for (const k of Object.keys(whole)) {
        expect(relErr(split[k]!, whole[k]!), `${backend}, ${per} per call: ${k} (seed ${seed})`).toBeLessThan(1e-5);
      }
    }
    // one sequence over the limit is an error a user can act on, not a silent wrong result
    setSsdBindingLimitForTests(perSeq - 4);
    await expect(evaluate(ssdScan, a, s.opts)).rejects.toThrow(/use a larger chunkSize/);
  });
});
