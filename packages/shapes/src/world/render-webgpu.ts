/**
 * The renderer as one WebGPU kernel: `renderScene`'s maths per pixel (signed distance at the pixel
 * centre, 8 × 8 supersampling on edge pixels, `over` compositing in object order), so a training batch
 * is drawn where the model reads it instead of in JavaScript and uploaded (seen on the H200 machine:
 * ~50 ms of host time per step at batch 512). The scene goes up as a small table of objects.
 *
 * It computes in float32 where `renderScene` uses float64: a supersample within ~1e-6 px of an edge can
 * fall on the other side, moving that pixel's coverage by 1/64 (tests bound how often and how far).
 */
import { runProgram, type WebGPUProgramSpec } from '@t2md/core';
import { engine, getKernel, type KernelFunc, type NamedAttrMap, registerKernel, type Tensor, type TensorInfo } from '@tensorflow/tfjs-core';
import { SUPERSAMPLE } from './geometry.js';
import { BACKGROUND, PALETTE, SHAPES } from './palette.js';
import type { SceneObject } from './scene.js';

export const RENDER_SCENES = 'T2mdRenderScenes';

/** Floats per object in the table: shape id, cx, cy, r (pixels), R, G, B, 1 (0 pads). */
const FIELDS = 8;

class RenderProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_render_scenes';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  variableNames = ['objs'];
  uniforms = 'res : i32, maxObjects : i32, pixels : i32,';

  constructor(B: number, res: number) {
    this.outputShape = [B, 3, res, res];
    this.dispatchLayout = { x: [0, 1, 2, 3] };
    this.dispatch = [Math.ceil((B * res * res) / 256), 1, 1];
  }

  getUserCode(): string {
    const [r, g, b] = BACKGROUND;
    return `
const S3 : f32 = 0.8660254037844386;
const HALF_DIAGONAL : f32 = ${Math.SQRT1_2 + 1e-6};
fn sdist(shape : i32, cx : f32, cy : f32, rad : f32, x : f32, y : f32) -> f32 {
  let dx = x - cx;
  let dy = y - cy;
  if (shape == 0) { return sqrt(dx * dx + dy * dy) - rad; }
  if (shape == 1) { return max(abs(dx) - rad, abs(dy) - rad); }
  let hh = rad * S3;
  let fromApex = dy + hh;
  return max(dy - hh, max(-S3 * dx - 0.5 * fromApex, S3 * dx - 0.5 * fromApex));
}
fn main(index : i32) {
  let p = index; // tfjs's flat index (it folds a dispatch of more than 65,535 workgroups)
  if (p >= uniforms.pixels) { return; }
  let res = uniforms.res;
  let plane = res * res;
  let bi = p / plane;
  let py = (p % plane) / res;
  let px = p % res;
  var col = vec3<f32>(${r}, ${g}, ${b});
  for (var o = 0; o < uniforms.maxObjects; o = o + 1) {
    let base = (bi * uniforms.maxObjects + o) * ${FIELDS};
    if (objs[base + 7] == 0.0) { continue; }
    let shape = i32(objs[base]);
    let cx = objs[base + 1];
    let cy = objs[base + 2];
    let rad = objs[base + 3];
    // the same box renderScene visits: coverage is 0 outside it
    var hh = rad;
    if (shape == 2) { hh = rad * S3; }
    let x0 = max(0, i32(floor(cx - rad - 1.0)));
    let x1 = min(res - 1, i32(ceil(cx + rad + 1.0)));
    let y0 = max(0, i32(floor(cy - hh - 1.0)));
    let y1 = min(res - 1, i32(ceil(cy + hh + 1.0)));
    if (px < x0 || px > x1 || py < y0 || py > y1) { continue; }
    let d = sdist(shape, cx, cy, rad, f32(px) + 0.5, f32(py) + 0.5);
    var a = 0.0;
    if (d <= -HALF_DIAGONAL) { a = 1.0; }
    else if (d < HALF_DIAGONAL) {
      var inside = 0;
      for (var j = 0; j < ${SUPERSAMPLE}; j = j + 1) {
        let y = f32(py) + (f32(j) + 0.5) / ${SUPERSAMPLE}.0;
        for (var i = 0; i < ${SUPERSAMPLE}; i = i + 1) {
          if (sdist(shape, cx, cy, rad, f32(px) + (f32(i) + 0.5) / ${SUPERSAMPLE}.0, y) <= 0.0) { inside = inside + 1; }
        }
      }
      a = f32(inside) / ${SUPERSAMPLE * SUPERSAMPLE}.0;
    }
    if (a > 0.0) {
      col = col * (1.0 - a) + vec3<f32>(objs[base + 4], objs[base + 5], objs[base + 6]) * a;
    }
  }
  let out = 2.0 * col - vec3<f32>(1.0);
  let o0 = bi * 3 * plane + py * res + px;
  setOutputAtIndex(o0, out.x);
  setOutputAtIndex(o0 + plane, out.y);
  setOutputAtIndex(o0 + 2 * plane, out.z);
}`;
  }
}

const gpuRender: KernelFunc = ({ inputs, backend, attrs }) => {
  const { objs } = inputs as { objs: TensorInfo };
  const { res } = attrs as unknown as { res: number };
  const [B, M] = objs.shape as [number, number];
  return runProgram(
    backend,
    new RenderProgram(B, res),
    [objs],
    [
      { type: 'int32', data: [res] },
      { type: 'int32', data: [M] },
      { type: 'int32', data: [B * res * res] },
    ],
  );
};

/** The object table `[B, M, 8]` of a batch of scenes (M = the most objects in one scene). */
export function objectTable(
  scenes: readonly { objects: readonly SceneObject[] }[],
  resolution: number,
): { values: Float32Array; M: number } {
  const M = Math.max(1, ...scenes.map((s) => s.objects.length));
  const values = new Float32Array(scenes.length * M * FIELDS);
  scenes.forEach((s, b) => {
    s.objects.forEach((o, i) => {
      const color = PALETTE[o.color];
      const at = (b * M + i) * FIELDS;
      values.set([SHAPES.indexOf(o.shape), o.cx * resolution, o.cy * resolution, o.r * resolution, ...color, 1], at);
    });
  });
  return { values, M };
}

/** Renders on the WebGPU backend from an object table tensor `[B, M, 8]` (see objectTable). */
export function renderOnGpu(objs: Tensor, resolution: number): Tensor {
  if (getKernel(RENDER_SCENES, 'webgpu') == null)
    registerKernel({ kernelName: RENDER_SCENES, backendName: 'webgpu', kernelFunc: gpuRender });
  return engine().runKernel(RENDER_SCENES, { objs }, { res: resolution } as unknown as NamedAttrMap) as Tensor;
}
