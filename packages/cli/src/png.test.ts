import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { encodeGridPng, type ImageCHW } from './png.js';

/** A 2×3 image (h × w) whose pixel (y, x) has red = (y·3 + x)/6 mapped to [-1, 1], green −1, blue 1. */
function ramp(): ImageCHW {
  const h = 2;
  const w = 3;
  const data = new Float32Array(3 * h * w);
  for (let i = 0; i < h * w; i++) {
    data[i] = (i / 6) * 2 - 1;
    data[h * w + i] = -1;
    data[2 * h * w + i] = 1;
  }
  return { data, height: h, width: w };
}

describe('encodeGridPng', () => {
  it('repeats each pixel scale × scale times and keeps the gap in output pixels', () => {
    const img = ramp();
    const one = PNG.sync.read(encodeGridPng([img, img], 1, 2));
    const three = PNG.sync.read(encodeGridPng([img, img], 1, 2, 3));
    expect([one.width, one.height]).toEqual([2 * 3 + 3, 2 + 2]);
    expect([three.width, three.height]).toEqual([2 * 9 + 3, 6 + 2]);
    const px = (p: PNG, x: number, y: number) => Array.from(p.data.subarray((y * p.width + x) * 4, (y * p.width + x) * 4 + 4));
    for (let k = 0; k < 2; k++) {
      for (let y = 0; y < 6; y++) {
        for (let x = 0; x < 9; x++) {
          // image k starts at x = 1 + k·(w + 1) in each grid, y = 1
          expect(px(three, 1 + k * 10 + x, 1 + y)).toEqual(px(one, 1 + k * 4 + Math.floor(x / 3), 1 + Math.floor(y / 3)));
        }
      }
    }
    expect(px(three, 0, 0)).toEqual([255, 255, 255, 255]); // the gap stays white
    expect(px(three, 3, 3)).toEqual([0, 0, 255, 255]); // image 0's pixel (0, 0): red −1, green −1, blue 1
    expect(px(three, 4, 1)).not.toEqual(px(three, 3, 1)); // x = 3 of the output is the source's second column
  });

  it('refuses a scale that is not a positive integer', () => {
    expect(() => encodeGridPng([ramp()], 2, 1, 0)).toThrow(/scale must be an integer >= 1/);
    expect(() => encodeGridPng([ramp()], 2, 1, 1.5)).toThrow(/scale must be an integer >= 1/);
  });
});
