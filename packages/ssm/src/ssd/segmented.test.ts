import { describeInfo, freshSeed, randomTensor, relErr, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { ssdScan } from './index.js';
import { float64Forward, makeSsdInputs, SSD_CASES, type SsdCase } from './test-cases.js';
import type { SsdScanInputs, SsdScanOptions } from './types.js';
import { segmentChunks } from './webgpu-segmented.js';

interface Case extends SsdCase {
  /** segmentChunks values to run: 0 picks from the shape; some leave a partial last segment. */
  segs: number[];
}

// SSD_CASES at smaller chunks (more of them per sequence), and a case of two 64-tiles each way. Every L
// leaves a partial last chunk; the segment lengths cover one chunk per segment, all chunks in one, and a
// partial last segment.
const chunked = (c: SsdCase, chunkSize: number, segs: number[]): Case => ({ ...c, opts: { ...c.opts, chunkSize }, segs });
const CASES: Case[] = [
  chunked(SSD_CASES[0]!, 4, [0, 1, 4, 6]),
  chunked(SSD_CASES[1]!, 8, [1, 2, 3]),
  chunked(SSD_CASES[2]!, 4, [2, 5]),
  {
    name: 'two 64-tiles each way (P 72, N 80, chunk 80), z + D',
    B: 1,
    L: 170,
    H: 2,
    P: 72,
    G: 1,
    N: 80,
    opts: { chunkSize: 80, dtSoftplus: true },
    segs: [2],
    D: 'head',
    z: true,
    A: [-2, -0.5],
    dt: [-3, -1],
  },
];

const present = (inp: SsdScanInputs) => Object.values(inp).filter((t): t is tf.Tensor => t instanceof tf.Tensor);

const pipelineKeys = () => Object.keys((tf.backend() as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache);

describe("ssdScan's segmented WebGPU forward", () => {
  it('matches the float64 recurrence on fresh random inputs at several segment lengths, without leaking', async (ctx) => {
    const info = await useBackend('webgpu', ctx);
    const seed = freshSeed();
    console.log(`segmented ssdScan vs float64 recurrence: ${describeInfo(info)}, seed ${seed}`);
    let runs = 0;
    for (const c of CASES) {
      const inp = makeSsdInputs(c, seed);
      const ref = await float64Forward(inp, c.opts);
      for (const segs of c.segs) {
        await withNoLeaks(async () => {
          const opts: SsdScanOptions = { ...c.opts, variant: 'segmented', segmentChunks: segs, returnFinalStates: true };
          const a = ssdScan(inp, opts);
          const ey = relErr(await a.y.data(), ref.y);
          const ef = relErr(await a.finalStates!.data(), ref.finalStates);
          tf.dispose([a.y, a.finalStates!]);
          // y alone (no finalStates output): the same y
          const y1 = ssdScan(inp, { ...opts, returnFinalStates: false }).y;
          const ey1 = relErr(await y1.data(), ref.y);
          y1.dispose();
          console.log(`  ${c.name}, segmentChunks ${segs}: y ${ey.toExponential(1)}, finalStates ${ef.toExponential(1)}`);
          expect(Number.isFinite(ey) && Number.isFinite(ef), `${c.name}, segmentChunks ${segs}: finite`).toBe(true);
          expect(ey, `${c.name}, segmentChunks ${segs}: y (seed ${seed})`).toBeLessThan(1e-4);
          expect(ey1, `${c.name}, segmentChunks ${segs}: y without finalStates (seed ${seed})`).toBeLessThan(1e-4);
          expect(ef, `${c.name}, segmentChunks ${segs}: finalStates (seed ${seed})`).toBeLessThan(1e-4);
          runs++;
        });
      }
      tf.dispose(present(inp));
    }
    expect(runs).toBe(CASES.reduce((n, c) => n + c.segs.length, 0));
    // the variant's own programs ran (not the chunked path under another name)
    const keys = pipelineKeys();
    for (const k of ['t2md_ssd_gemm_states_seg', 't2md_ssd_gemm_y_seg', 't2md_ssd_segpass_']) {
      expect(
        keys.some((key) => key.startsWith(k)),
        `a pipeline ${k}*`,
      ).toBe(true);
    }
  }, 600_000);

  it("leaves the gradients the chunked forward's, bit for bit (the backward recomputes its own states)", async (ctx) => {
    await useBackend('webgpu', ctx);
    const seed = freshSeed();
    const c = CASES[1]!; // every optional input
    const inp = makeSsdInputs(c, seed);
    const keys = (Object.keys(inp) as (keyof SsdScanInputs)[]).filter((k) => inp[k] != null);
    const xs = keys.map((k) => inp[k] as tf.Tensor);
    const wy = randomTensor([c.B, c.L, c.H, c.P], seed + 1);
    const grads = (variant: 'chunked' | 'segmented') =>
      tf.grads((...ts: tf.Tensor[]) => {
        const named = Object.fromEntries(keys.map((k, i) => [k, ts[i]])) as unknown as SsdScanInputs;
        return tf.sum(tf.mul(ssdScan(named, { ...c.opts, variant, segmentChunks: 2 }).y, wy));
      })(xs);
    await withNoLeaks(async () => {
      const [gc, gs] = [grads('chunked'), grads('segmented')];
      for (let i = 0; i < keys.length; i++) {
        const bits = async (t: tf.Tensor) => Array.from(new Uint32Array(((await t.data()) as Float32Array).buffer));
        expect(await bits(gs[i]!), `d${keys[i]} (seed ${seed})`).toEqual(await bits(gc[i]!));
      }
      tf.dispose([...gc, ...gs]);
    });
    tf.dispose([wy, ...xs]);
  }, 600_000);
});

describe('segmentChunks', () => {
  it('keeps the fused state pass at about 8 workgroups per H100 SM, or what the caller asks', () => {
    // issue 23's shape: 36 heads × 64 × 256 is 144 tiles of 64×64; 128 chunks of 128 tokens
    const bench = { Bz: 1, H: 36, P: 64, N: 256, Nc: 128 };
    expect(segmentChunks(bench, 0)).toBe(16); // 8 segments: 1,152 workgroups
    expect(segmentChunks({ ...bench, Bz: 64 }, 0)).toBe(128); // enough (b, h, tile) walks: one segment
    expect(segmentChunks(bench, 5)).toBe(5);
    expect(segmentChunks(bench, 500)).toBe(128);
  });
});

describe('ssdScan variant options', () => {
  it('reject an unknown variant, a bad segmentChunks or an unknown gemmTile with an InputError naming the option', async (ctx) => {
    await useBackend('cpu', ctx);
    const inp = makeSsdInputs(CASES[0]!, 3);
    expect(() => ssdScan(inp, { variant: 'fast' as never })).toThrow(/variant must be one of chunked, segmented, got "fast"/);
    expect(() => ssdScan(inp, { segmentChunks: -1 })).toThrow(/segmentChunks must be an integer >= 0/);
    expect(() => ssdScan(inp, { segmentChunks: 1.5 })).toThrow(/segmentChunks must be an integer >= 0/);
    expect(() => ssdScan(inp, { gemmTile: '16x16' as never })).toThrow(/gemmTile must be one of 4x4, 4x4p, 8x4, 4x8, 8x8, got "16x16"/);
    tf.dispose(present(inp));
  });
});
