import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Tensor } from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';

/** An RGB image as CHW floats in [-1, 1] (the models' output convention). */
export interface ImageCHW {
  data: Float32Array;
  height: number;
  width: number;
}

/** Reads a batch of images `[n, 3, h, w]` back (and disposes the tensor): one `ImageCHW` each. */
export async function readImages(images: Tensor): Promise<ImageCHW[]> {
  const [n, c, h, w] = images.shape as [number, number, number, number];
  const data = (await images.data()) as Float32Array;
  images.dispose();
  const per = c * h * w;
  return Array.from({ length: n }, (_, i) => ({ data: data.slice(i * per, (i + 1) * per), height: h, width: w }));
}

/**
 * Lays images out in a grid, row by row (`cols` columns, by default ceil(sqrt(n))), with a `gap`-pixel
 * border and encodes a PNG. Values are clamped from [-1, 1] to bytes. `scale` (an integer ≥ 1) repeats
 * each pixel scale × scale times (nearest neighbour, so a 32-px sample stays sharp when shown large);
 * the gap is in output pixels.
 */
export function encodeGridPng(images: ImageCHW[], gap = 2, cols = Math.ceil(Math.sqrt(images.length)), scale = 1): Buffer {
  if (!Number.isInteger(scale) || scale < 1) throw new RangeError(`scale must be an integer >= 1, got ${scale}`);
  const n = images.length;
  const rows = Math.ceil(n / cols);
  const h = images[0].height * scale;
  const w = images[0].width * scale;
  const W = cols * w + (cols + 1) * gap;
  const H = rows * h + (rows + 1) * gap;
  const png = new PNG({ width: W, height: H });
  png.data.fill(255);
  images.forEach((img, k) => {
    const ox = gap + (k % cols) * (w + gap);
    const oy = gap + Math.floor(k / cols) * (h + gap);
    const plane = img.height * img.width;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = ((oy + y) * W + ox + x) * 4;
        const src = Math.floor(y / scale) * img.width + Math.floor(x / scale);
        for (let c = 0; c < 3; c++) {
          const v = img.data[c * plane + src];
          png.data[o + c] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
        }
        png.data[o + 3] = 255;
      }
    }
  });
  return PNG.sync.write(png);
}

/** Writes a file atomically: a temporary file in the same folder, fsync, then rename over the target. */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
