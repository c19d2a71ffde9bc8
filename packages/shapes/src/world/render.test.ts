import { InputError, initBackend, Rng } from '@t2md/core';
import { describeInfo, freshSeed, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { centroidOffsetY, halfHeight, SUPERSAMPLE, shapeArea, signedDistance } from './geometry.js';
import { BACKGROUND, PALETTE, SHAPES } from './palette.js';
import { imagesToTensor, renderBatch, renderScene, toModelRange } from './render.js';
import { type SceneObject, sampleScene } from './scene.js';

const bg = BACKGROUND.map(toModelRange);

/** Coverage of each pixel by a single object on the background (from the red channel's mix). */
function coverage(img: Float32Array, res: number, o: SceneObject): Float64Array {
  const n = res * res;
  const c = PALETTE[o.color].map(toModelRange);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (img[i] - bg[0]) / (c[0] - bg[0]);
  return out;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}

describe('renderer', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('writes CHW images in [-1, 1], deterministically, with the background and palette colours exact', () => {
    const rng = new Rng(11);
    for (const res of [16, 33, 64]) {
      for (let k = 0; k < 20; k++) {
        const s = sampleScene(rng);
        const img = renderScene(s, res);
        expect(img.length).toBe(3 * res * res);
        expect(img.every((v) => v >= -1 && v <= 1)).toBe(true);
        expect(sameBits(renderScene(s, res), img)).toBe(true);
        // Corner pixel is background; the pixel at each object's centroid is its colour (when the
        // inscribed circle is wide enough to hold a whole pixel there).
        for (let c = 0; c < 3; c++) expect(img[c * res * res]).toBeCloseTo(bg[c], 6);
        for (const o of s.objects) {
          if ((o.shape === 'triangle' ? o.r / Math.sqrt(3) : o.r) * res < 1.5) continue;
          const px = Math.floor(o.cx * res);
          const py = Math.floor((o.cy + centroidOffsetY(o.shape, o.r)) * res);
          const want = PALETTE[o.color].map(toModelRange);
          for (let c = 0; c < 3; c++) expect(img[c * res * res + py * res + px]).toBeCloseTo(want[c], 5);
        }
      }
    }
  });

  it('anti-aliases edges: rim pixels are intermediate mixes of colour and background, and coverage sums to the area', () => {
    for (const shape of SHAPES) {
      const o: SceneObject = { shape, color: 'blue', size: 'large', cx: 0.5123, cy: 0.4871, r: 0.2 };
      for (const res of [32, 128]) {
        const img = renderScene([o], res);
        const a = coverage(img, res, o);
        const partial = a.filter((v) => v > 0.02 && v < 0.98).length;
        // Every edge pixel is partial: about perimeter-in-pixels of them.
        expect(partial).toBeGreaterThan(0.5 * 2 * Math.PI * o.r * res);
        // Partial pixels are on the background -> blue segment (green and blue channels agree with red's alpha).
        const n = res * res;
        const c = PALETTE.blue.map(toModelRange);
        let worst = 0;
        for (let i = 0; i < n; i++) {
          for (const ch of [1, 2]) worst = Math.max(worst, Math.abs(img[ch * n + i] - (bg[ch] + a[i] * (c[ch] - bg[ch]))));
        }
        expect(worst).toBeLessThan(1e-5);
        const area = a.reduce((s, v) => s + v, 0) / n;
        expect(Math.abs(area - shapeArea(shape, o.r)) / shapeArea(shape, o.r)).toBeLessThan(0.01);
      }
    }
  });

  it('renders batches as float32 tensors [B, 3, H, W] without leaking', async () => {
    const rng = new Rng(5);
    const scenes = Array.from({ length: 3 }, () => sampleScene(rng));
    await withNoLeaks(async () => {
      const t = renderBatch(scenes, 24);
      expect(t.shape).toEqual([3, 3, 24, 24]);
      expect(t.dtype).toBe('float32');
      const data = await t.data();
      expect(Array.from(data.subarray(3 * 24 * 24, 2 * 3 * 24 * 24))).toEqual(Array.from(renderScene(scenes[1], 24)));
      tf.dispose(t);
    });
  });

  it('rejects bad resolutions and images with an InputError', () => {
    const s = sampleScene(new Rng(1));
    expect(() => renderScene(s, 0)).toThrow(InputError);
    expect(() => renderScene(s, 12.5)).toThrow(/resolution must be an integer in \[8, 4096\], got 12.5/);
    expect(() => renderScene([{ ...s.objects[0], color: 'pink' as never }], 16)).toThrow(/colour "pink" is not in the palette/);
    expect(() => imagesToTensor([new Float32Array(10)], 8)).toThrow(/images\[0\] has 10 values, expected 3 x 8 x 8 = 192/);
  });
});

/**
 * Per pixel, how many of its supersamples lie within 1e-4 px of an object's edge (by the float64 signed
 * distance), where the kernel's float32 (coordinates rounded by ~2e-6 px) may decide the other way.
 * Usually none or one; but a triangle's base is horizontal, so when it falls on a sample row all 8
 * samples of that row flip together (seeds 4859 and 13578 drew 0.165 and 0.21, about 1 run in 10,000).
 */
function edgeSamples(objects: readonly SceneObject[], res: number): Uint16Array {
  const count = new Uint16Array(res * res);
  for (const o of objects) {
    const [cx, cy, r] = [o.cx * res, o.cy * res, o.r * res];
    const hh = halfHeight(o.shape, r);
    for (let py = Math.max(0, Math.floor(cy - hh - 1)); py <= Math.min(res - 1, Math.ceil(cy + hh + 1)); py++) {
      for (let px = Math.max(0, Math.floor(cx - r - 1)); px <= Math.min(res - 1, Math.ceil(cx + r + 1)); px++) {
        for (let j = 0; j < SUPERSAMPLE; j++) {
          for (let i = 0; i < SUPERSAMPLE; i++) {
            const d = signedDistance(o.shape, cx, cy, r, px + (i + 0.5) / SUPERSAMPLE, py + (j + 0.5) / SUPERSAMPLE);
            if (Math.abs(d) < 1e-4) count[py * res + px]!++;
          }
        }
      }
    }
  }
  return count;
}

describe('renderBatch on webgpu', () => {
  it('draws what renderScene draws, up to float32 edge samples, without leaking', async (ctx) => {
    const info = await useBackend('webgpu', ctx);
    console.log(`renderBatch: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    const rng = new Rng(seed);
    // every category (up to four objects, all shapes and colours), an odd and an even resolution
    for (const res of [32, 37]) {
      const scenes = Array.from({ length: 24 }, () => sampleScene(rng));
      await withNoLeaks(async () => {
        const t = renderBatch(scenes, res);
        expect(t.shape).toEqual([24, 3, res, res]);
        const got = await t.data();
        const want = new Float32Array(24 * 3 * res * res);
        for (const [b, s] of scenes.entries()) want.set(renderScene(s, res), b * 3 * res * res);
        const plane = res * res;
        const edges = scenes.map((sc) => edgeSamples(sc.objects, res));
        let off = 0;
        let excess = 0;
        for (let i = 0; i < want.length; i++) {
          const d = Math.abs(got[i]! - want[i]!);
          if (d > 1e-5) off++;
          // Each supersample within float32 rounding of an edge may flip: 1/64 of coverage moves a value
          // by at most 2·(1/64) in the model's range (colour distances are ≤ 1 per channel in [0, 1]).
          // Anywhere else the kernel must agree to 1e-5, so a wrong shape, colour or pixel still shows.
          const flips = edges[Math.floor(i / (3 * plane))]![i % plane]!;
          excess = Math.max(excess, d - (2 * flips) / 64 - 1e-5);
        }
        expect(excess, `seed ${seed} res ${res}`).toBeLessThanOrEqual(0);
        expect(off / want.length, `seed ${seed} res ${res}`).toBeLessThan(0.005);
        tf.dispose(t);
      });
    }
  });
});
