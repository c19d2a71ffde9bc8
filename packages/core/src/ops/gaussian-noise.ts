/**
 * `gaussianNoise(shape, key)`: standard normals made where the tensor lives, from a counter-based
 * generator: element i of the pair j = ⌊i/2⌋ takes two 32-bit words hashed from (2j, key) and
 * (2j + 1, key) and turns them into one Box-Muller pair. The same key gives the same noise on every
 * backend up to the transcendental functions (the integer words are identical; WebGPU evaluates
 * log/cos/sin in float32, cpu and wasm in float64 before rounding), any element can be made alone, and nothing is
 * drawn in JavaScript or uploaded (WGSL's log/sin/cos are the adapter's own: SwiftShader's differ from
 * float64 by up to ~1e-3 at these ranges, which moves no moment of the distribution measurably): a training step at batch 512 needs 1.5M normals, which `Rng.randn`
 * spent ~60 ms of host time on.
 *
 * The hash is a keyed pair of `triple32` rounds (Chris Wellons' integer hash: xor-shift-multiply with
 * full avalanche), cheap in WGSL's u32 arithmetic and JavaScript's `Math.imul`. It is no cryptographic
 * generator; it is plenty for diffusion noise.
 */

import type { KernelConfig, KernelFunc, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, check } from '../assert.js';
import { onEveryBackend, registerKernelsOnce } from '../kernel/register.js';
import { typedArrayKernel } from '../kernel/typed-array-kernel.js';
import { runProgram, type WebGPUProgramSpec } from '../kernel/webgpu-program.js';

export const GAUSSIAN_NOISE = 'T2mdGaussianNoise';

interface NoiseAttrs {
  shape: number[];
  key0: number;
  key1: number;
}

function triple32(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 17;
  x = Math.imul(x, 0xed5ad4bb);
  x ^= x >>> 11;
  x = Math.imul(x, 0xac4c1b51);
  x ^= x >>> 15;
  x = Math.imul(x, 0x31848bab);
  x ^= x >>> 14;
  return x >>> 0;
}

/** The 32-bit word of counter c under key (k0, k1). */
function word(c: number, k0: number, k1: number): number {
  return triple32((triple32((c ^ k0) >>> 0) + k1) >>> 0);
}

/** The n normals of key (k0, k1), in float32 (the cpu and wasm kernel, and the reference). */
export function gaussianNoiseValues(n: number, k0: number, k1: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const j = i >>> 1;
    const a = word(2 * j, k0, k1);
    const b = word(2 * j + 1, k0, k1);
    const u1 = ((a >>> 8) + 1) / 16777216; // (0, 1]: log never sees 0
    const theta = (2 * Math.PI * (b >>> 8)) / 16777216 - Math.PI; // [-π, π): accurate sin/cos range
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = -r * Math.cos(theta); // cos(θ + π) = −cos θ
    if (i + 1 < n) out[i + 1] = -r * Math.sin(theta);
  }
  return out;
}

class GaussianNoiseProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_gaussian_noise';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  variableNames: string[] = [];
  uniforms = 'k0 : u32, k1 : u32,';
  size = true;

  constructor(shape: number[]) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [Math.ceil(shape.reduce((a, b) => a * b, 1) / 256), 1, 1];
  }

  getUserCode(): string {
    return `
fn triple32(v : u32) -> u32 {
  var x = v;
  x = x ^ (x >> 17u); x = x * 0xed5ad4bbu;
  x = x ^ (x >> 11u); x = x * 0xac4c1b51u;
  x = x ^ (x >> 15u); x = x * 0x31848babu;
  x = x ^ (x >> 14u);
  return x;
}
fn word(c : u32) -> u32 { return triple32(triple32(c ^ uniforms.k0) + uniforms.k1); }
fn main(index : i32) {
  if (index >= uniforms.size) { return; }
  let j = u32(index) >> 1u;
  let a = word(2u * j);
  let b = word(2u * j + 1u);
  let u1 = f32((a >> 8u) + 1u) / 16777216.0;
  let theta = 6.283185307179586 * f32(b >> 8u) / 16777216.0 - 3.141592653589793;
  let r = sqrt(-2.0 * log(u1));
  setOutputAtIndex(index, select(-r * cos(theta), -r * sin(theta), (index & 1) == 1));
}`;
  }
}

const jsKernel = typedArrayKernel<NoiseAttrs>([], (_, { shape, key0, key1 }) => ({
  shape: [...shape],
  values: gaussianNoiseValues(
    shape.reduce((a, b) => a * b, 1),
    key0,
    key1,
  ),
}));

const gpuKernel: KernelFunc = ({ backend, attrs }) => {
  const { shape, key0, key1 } = attrs as unknown as NoiseAttrs;
  return runProgram(
    backend,
    new GaussianNoiseProgram(shape),
    [],
    [
      { type: 'uint32', data: [key0] },
      { type: 'uint32', data: [key1] },
    ],
  );
};

const kernels: KernelConfig[] = [...onEveryBackend(GAUSSIAN_NOISE, jsKernel, gpuKernel)];

/**
 * Standard normal noise of `shape` for the 64-bit key `[k0, k1]` (two uint32s, e.g. two draws of an
 * `Rng`), made on the device (see the module comment).
 */
export function gaussianNoise(shape: number[], key: readonly [number, number]): Tensor {
  check(Array.isArray(shape), () => `shape must be an array of sizes, got ${JSON.stringify(shape)}.`);
  for (const d of shape) assertInt('shape entry', d, 0);
  check(Array.isArray(key) && key.length === 2, () => `key must be [k0, k1], two uint32s, got ${JSON.stringify(key)}.`);
  for (const k of key) assertInt('key entry', k, 0, 2 ** 32 - 1);
  registerKernelsOnce(kernels);
  const attrs: NoiseAttrs = { shape: [...shape], key0: key[0], key1: key[1] };
  return tf.engine().runKernel(GAUSSIAN_NOISE, {}, attrs as unknown as NamedAttrMap) as Tensor;
}
