/**
 * The renderer: a scene to an anti-aliased RGB image in [-1, 1], channels first ([3, H, W]).
 * Pure JavaScript and deterministic, so the same scene gives the same bits everywhere; a batch is
 * uploaded to a tfjs tensor [B, 3, H, W] by `renderBatch`.
 */
import { assertInt, InputError } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { halfHeight, pixelCoverage } from './geometry.js';
import { BACKGROUND, PALETTE } from './palette.js';
import { objectTable, renderOnGpu } from './render-webgpu.js';
import type { SceneObject } from './scene.js';

/** Smallest resolution the renderer and dataset accept (the checker's promise starts higher, see checker.ts). */
export const MIN_RESOLUTION = 8;
/** Largest resolution accepted (a guard against typos: 4096^2 x 3 floats is already 200 MB). */
export const MAX_RESOLUTION = 4096;

/** Checks a resolution argument: an integer in [MIN_RESOLUTION, MAX_RESOLUTION]. */
export function checkResolution(name: string, resolution: unknown): asserts resolution is number {
  assertInt(name, resolution, MIN_RESOLUTION, MAX_RESOLUTION);
}

/** Maps [0, 1] colour to the model's [-1, 1] range. */
export function toModelRange(v: number): number {
  return 2 * v - 1;
}

/**
 * Renders objects onto the background at `resolution` x `resolution` pixels: a Float32Array of length
 * 3 * H * W in CHW order with values in [-1, 1]. Objects are composited in order (`over`), each with
 * its exact-ish pixel coverage (8 x 8 supersampling on edge pixels), so edges are anti-aliased.
 */
export function renderScene(scene: { objects: readonly SceneObject[] } | readonly SceneObject[], resolution: number): Float32Array {
  checkResolution('resolution', resolution);
  const objects: readonly SceneObject[] = Array.isArray(scene) ? scene : (scene as { objects: readonly SceneObject[] }).objects;
  if (objects == null || typeof objects.length !== 'number') throw new InputError('scene must be a Scene or an array of SceneObject.');
  const n = resolution * resolution;
  // Composite in [0, 1] colour, one plane per channel.
  const rgb = [new Float32Array(n).fill(BACKGROUND[0]), new Float32Array(n).fill(BACKGROUND[1]), new Float32Array(n).fill(BACKGROUND[2])];
  for (const o of objects) {
    const color = PALETTE[o.color];
    if (color == null) throw new InputError(`object colour ${JSON.stringify(o.color)} is not in the palette.`);
    const cx = o.cx * resolution;
    const cy = o.cy * resolution;
    const r = o.r * resolution;
    const hh = halfHeight(o.shape, r);
    const x0 = Math.max(0, Math.floor(cx - r - 1));
    const x1 = Math.min(resolution - 1, Math.ceil(cx + r + 1));
    const y0 = Math.max(0, Math.floor(cy - hh - 1));
    const y1 = Math.min(resolution - 1, Math.ceil(cy + hh + 1));
    for (let py = y0; py <= y1; py++) {
      for (let px = x0; px <= x1; px++) {
        const a = pixelCoverage(o.shape, cx, cy, r, px, py);
        if (a === 0) continue;
        const i = py * resolution + px;
        for (let c = 0; c < 3; c++) rgb[c][i] = rgb[c][i] * (1 - a) + color[c] * a;
      }
    }
  }
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const plane = rgb[c];
    for (let i = 0; i < n; i++) out[c * n + i] = toModelRange(plane[i]);
  }
  return out;
}

/** Stacks CHW images of one resolution into a float32 tensor [B, 3, H, W]. */
export function imagesToTensor(images: readonly Float32Array[], resolution: number): tf.Tensor4D {
  checkResolution('resolution', resolution);
  const per = 3 * resolution * resolution;
  if (images.length === 0) throw new InputError('images must hold at least one image.');
  const data = new Float32Array(images.length * per);
  images.forEach((img, b) => {
    if (img.length !== per) {
      throw new InputError(`images[${b}] has ${img.length} values, expected 3 x ${resolution} x ${resolution} = ${per}.`);
    }
    data.set(img, b * per);
  });
  return tf.tensor4d(data, [images.length, 3, resolution, resolution], 'float32');
}

/**
 * Renders scenes into a float32 tensor [B, 3, H, W] with values in [-1, 1]: on WebGPU by one kernel
 * (`render-webgpu.ts`, float32, so an edge supersample can land on the other side of the edge than in
 * `renderScene`), elsewhere by `renderScene`.
 */
export function renderBatch(scenes: readonly { objects: readonly SceneObject[] }[], resolution: number): tf.Tensor4D {
  checkResolution('resolution', resolution);
  if (scenes.length === 0) throw new InputError('scenes must hold at least one scene.');
  if (tf.getBackend() === 'webgpu') {
    for (const s of scenes) {
      for (const o of s.objects)
        if (PALETTE[o.color] == null) throw new InputError(`object colour ${JSON.stringify(o.color)} is not in the palette.`);
    }
    const { values, M } = objectTable(scenes, resolution);
    return tf.tidy(() => renderOnGpu(tf.tensor3d(values, [scenes.length, M, 8]), resolution)) as tf.Tensor4D;
  }
  return imagesToTensor(
    scenes.map((s) => renderScene(s, resolution)),
    resolution,
  );
}
