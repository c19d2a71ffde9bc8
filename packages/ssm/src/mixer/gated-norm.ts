/**
 * The gated RMSNorm of Mamba-2 (mamba_ssm's `RMSNormGated`, norm_before_gate=False) without its weight,
 * as one fused kernel per backend with its gradient: over the tfjs ops it replaces (9 passes forward,
 * about 20 backward, each over a [B, L, d_inner] tensor) it reads y and z once and writes once.
 */
import {
  assertFloat,
  check,
  fmtShape,
  onEveryBackend,
  type ProgramUniform,
  registerKernelsOnce,
  runProgram,
  typedArrayKernel,
} from '@t2md/core';
import {
  engine,
  type GradConfig,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  reshape,
  type Tensor,
  type TensorInfo,
  tidy,
} from '@tensorflow/tfjs-core';
import { GatedNormGradProgram, GatedNormProgram } from './gated-norm-webgpu.js';
import { gatedNormHost } from './mixer-host.js';

export const GATED_NORM = 'T2mdGatedRmsNorm';
export const GATED_NORM_GRAD = 'T2mdGatedRmsNormGrad';
/** The forward with one gate row shared by several rows of y (cpu, wasm and webgpu; no gradient). */
export const GATED_NORM_SHARED = 'T2mdGatedRmsNormSharedGate';

interface GatedNormAttrs {
  eps: number;
  /** webgpu: at most this many workgroups (each then takes several units); default 65535, one dispatch dimension */
  maxWorkgroups: number;
}

const sigm = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));

/** Forward on typed arrays: y, z `[R, S]` -> g / sqrt(mean(g^2) + eps), g = y silu(z). */
export function gatedNormValues(y: Float32Array, z: Float32Array, S: number, eps: number): Float32Array {
  const out = new Float32Array(y.length);
  for (let base = 0; base < y.length; base += S) {
    let ss = 0;
    for (let c = base; c < base + S; c++) {
      const g = y[c] * z[c] * sigm(z[c]);
      out[c] = g;
      ss += g * g;
    }
    const r = 1 / Math.sqrt(ss / S + eps);
    for (let c = base; c < base + S; c++) out[c] *= r;
  }
  return out;
}

/**
 * `gatedNormValues` with each gate row shared by k rows of y: y `[M, k, J, S]`, z `[M, 1, J, S]`,
 * row (m, i, j) of y gated by row (m, j) of z. Each row's arithmetic is `gatedNormValues`'s, so the
 * result is what gating k copies of z gives, bit for bit.
 */
export function gatedNormSharedValues(y: Float32Array, z: Float32Array, [M, k, J, S]: readonly number[], eps: number): Float32Array {
  const out = new Float32Array(y.length);
  for (let m = 0; m < M; m++) {
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < J; j++) {
        const base = ((m * k + i) * J + j) * S;
        const zb = (m * J + j) * S;
        let ss = 0;
        for (let c = 0; c < S; c++) {
          const g = y[base + c] * z[zb + c] * sigm(z[zb + c]);
          out[base + c] = g;
          ss += g * g;
        }
        const r = 1 / Math.sqrt(ss / S + eps);
        for (let c = base; c < base + S; c++) out[c] *= r;
      }
    }
  }
  return out;
}

/** Backward on typed arrays: [dy, dz] from dn = dL/d out. */
export function gatedNormGradValues(
  y: Float32Array,
  z: Float32Array,
  dn: Float32Array,
  S: number,
  eps: number,
): [Float32Array, Float32Array] {
  const dy = new Float32Array(y.length);
  const dz = new Float32Array(y.length);
  for (let base = 0; base < y.length; base += S) {
    let ss = 0;
    let sd = 0;
    for (let c = base; c < base + S; c++) {
      const g = y[c] * z[c] * sigm(z[c]);
      ss += g * g;
      sd += dn[c] * g;
    }
    const r = 1 / Math.sqrt(ss / S + eps);
    const k3 = (r * r * r * sd) / S;
    for (let c = base; c < base + S; c++) {
      const s = sigm(z[c]);
      const g = y[c] * z[c] * s;
      const dg = r * dn[c] - g * k3;
      dy[c] = dg * z[c] * s;
      dz[c] = dg * y[c] * s * (1 + z[c] * (1 - s));
    }
  }
  return [dy, dz];
}

const jsForward = typedArrayKernel<GatedNormAttrs>(['y', 'z'], (i, a) => ({
  shape: i.y!.shape,
  values: gatedNormValues(i.y!.values, i.z!.values, i.y!.shape[1], a.eps),
}));
// wasm: its XNNPACK kernels (mixer-host.ts), gatedNormValues its reference; cpu keeps the loop
const wasmForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const { y, z } = inputs as { y: TensorInfo; z: TensorInfo };
  return gatedNormHost(backend as KernelBackend, y, z, (attrs as unknown as GatedNormAttrs).eps);
};
const jsSharedForward = typedArrayKernel<GatedNormAttrs>(['y', 'z'], (i, a) => ({
  shape: i.y!.shape,
  values: gatedNormSharedValues(i.y!.values, i.z!.values, i.y!.shape, a.eps),
}));
const jsGrad = typedArrayKernel<GatedNormAttrs>(['y', 'z', 'dn'], (i, a) => {
  const [dy, dz] = gatedNormGradValues(i.y!.values, i.z!.values, i.dn!.values, i.y!.shape[1], a.eps);
  return [
    { shape: i.y!.shape, values: dy },
    { shape: i.y!.shape, values: dz },
  ];
});

/** Units per workgroup and the uniforms of a run over `[R, S]`. */
function plan(shape: number[], attrs: GatedNormAttrs): { U: number; uniforms: ProgramUniform[] } {
  const [R, S] = shape;
  const U = Math.max(1, Math.ceil(R / attrs.maxWorkgroups));
  const uniforms: ProgramUniform[] = [
    { type: 'int32', data: [R] },
    { type: 'int32', data: [S] },
    { type: 'float32', data: [attrs.eps] },
    { type: 'int32', data: [U] },
  ];
  return { U, uniforms };
}

const gpuForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const { y, z } = inputs as { y: TensorInfo; z: TensorInfo };
  const { U, uniforms } = plan(y.shape, attrs as unknown as GatedNormAttrs);
  return runProgram(backend as KernelBackend, new GatedNormProgram(y.shape[0], y.shape[1], U), [y, z], uniforms);
};
// y [M, k, J, S], z [M, 1, J, S]: the units are y's M·k·J rows of S; the program reads both flat
const gpuSharedForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const { y, z } = inputs as { y: TensorInfo; z: TensorInfo };
  const [M, k, J, S] = y.shape as [number, number, number, number];
  const { U, uniforms } = plan([M * k * J, S], attrs as unknown as GatedNormAttrs);
  uniforms.push({ type: 'int32', data: [k] }, { type: 'int32', data: [J] });
  return runProgram(backend as KernelBackend, new GatedNormProgram(M * k * J, S, U, true), [y, z], uniforms); // [M·k·J, S]: the op reshapes
};
const gpuGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { y, z, dn } = inputs as { y: TensorInfo; z: TensorInfo; dn: TensorInfo };
  const [R, S] = y.shape;
  const { U, uniforms } = plan(y.shape, attrs as unknown as GatedNormAttrs);
  // one program writes one output: dy and dz each redo the (cheap) per-unit reductions
  return [
    runProgram(backend as KernelBackend, new GatedNormGradProgram(R, S, U, 'y'), [y, z, dn], uniforms),
    runProgram(backend as KernelBackend, new GatedNormGradProgram(R, S, U, 'z'), [y, z, dn], uniforms),
  ];
};

const kernels: KernelConfig[] = [
  ...onEveryBackend(GATED_NORM, jsForward, gpuForward, wasmForward),
  ...onEveryBackend(GATED_NORM_GRAD, jsGrad, gpuGrad),
  { kernelName: GATED_NORM_SHARED, backendName: 'cpu', kernelFunc: jsSharedForward as unknown as KernelFunc },
  // wasm: gatedNormHost broadcasts the shared gate itself, so the plain forward serves both
  { kernelName: GATED_NORM_SHARED, backendName: 'wasm', kernelFunc: wasmForward },
  { kernelName: GATED_NORM_SHARED, backendName: 'webgpu', kernelFunc: gpuSharedForward },
];

const grad: GradConfig = {
  kernelName: GATED_NORM,
  inputsToSave: ['y', 'z'],
  gradFunc: (dn, saved, attrs) => {
    const [y, z] = saved;
    const [dy, dz] = engine().runKernel(GATED_NORM_GRAD, { y, z, dn: dn as Tensor }, attrs as NamedAttrMap) as Tensor[];
    return { y: () => dy, z: () => dz };
  },
};

/** Registers the fused gated-norm kernels (cpu, wasm, webgpu) and their gradient; idempotent. */
export function registerGatedNormKernels(): void {
  registerKernelsOnce(kernels, [grad]);
}

/**
 * `g / sqrt(mean(g^2) + eps)` with `g = y * silu(z)`, the mean over each group of `groupSize`
 * consecutive channels of the last axis (mamba_ssm's `RMSNormGated(norm_before_gate=False)` before its
 * weight). One fused kernel, differentiable in y and z, on cpu, wasm and webgpu.
 * @param y `[..., C]` float32, C a multiple of groupSize
 * @param z like y
 * @param opts.maxWorkgroups webgpu only: cap on workgroups per dispatch (default 65535; tests lower it
 *   to cover the several-units-per-workgroup path on small shapes)
 * @returns like y
 */
export function gatedRmsNormFused(y: Tensor, z: Tensor, groupSize: number, eps: number, opts: { maxWorkgroups?: number } = {}): Tensor {
  assertFloat('y', y);
  assertFloat('z', z);
  check(
    y.shape.length === z.shape.length && y.shape.every((d, i) => d === z.shape[i]),
    () => `z must have the shape of y ${fmtShape(y.shape)}, got ${fmtShape(z.shape)}.`,
  );
  const C = y.shape[y.rank - 1];
  check(
    Number.isInteger(groupSize) && groupSize >= 1 && C % groupSize === 0,
    () => `groupSize must divide the last axis of y (${C}), got ${groupSize}.`,
  );
  check(eps > 0, () => `eps must be positive, got ${eps}.`);
  const maxWg = opts.maxWorkgroups ?? 65535;
  check(Number.isInteger(maxWg) && maxWg >= 1 && maxWg <= 65535, () => `maxWorkgroups must be an integer in [1, 65535], got ${maxWg}.`);
  registerGatedNormKernels();
  return tidy(() => {
    const R = y.size / groupSize;
    const attrs: GatedNormAttrs = { eps, maxWorkgroups: opts.maxWorkgroups ?? 65535 };
    const out = engine().runKernel(
      GATED_NORM,
      { y: reshape(y, [R, groupSize]), z: reshape(z, [R, groupSize]) },
      attrs as unknown as NamedAttrMap,
    ) as Tensor;
    return reshape(out, y.shape);
  });
}

/**
 * `gatedRmsNormFused(y, z')` where z' repeats each gate row k times: y `[B, L, k·C]` (k blocks of C
 * channels per token, e.g. the bidirectional mixer's two scan directions gathered back to grid order),
 * z `[B, L, C]`, groups of `groupSize` channels within each block. The same values as gating a k-fold
 * copy of z (bit for bit) without making that copy (on cpu and wasm each gate's sigmoid is taken once).
 * cpu, wasm and webgpu, forward only (no gradient): for inference.
 * @param opts.maxWorkgroups webgpu only: as for `gatedRmsNormFused`
 * @returns like y
 */
export function gatedRmsNormSharedGate(
  y: Tensor,
  z: Tensor,
  groupSize: number,
  eps: number,
  opts: { maxWorkgroups?: number } = {},
): Tensor {
  assertFloat('y', y);
  assertFloat('z', z);
  const C = z.shape[z.rank - 1]!;
  check(
    y.rank === 3 && z.rank === 3 && y.shape[0] === z.shape[0] && y.shape[1] === z.shape[1] && y.shape[2]! % C === 0,
    () => `y must be [B, L, k·C] for z [B, L, C], got y ${fmtShape(y.shape)} and z ${fmtShape(z.shape)}.`,
  );
  check(
    Number.isInteger(groupSize) && groupSize >= 1 && C % groupSize === 0,
    () => `groupSize must divide z's channels (${C}), got ${groupSize}.`,
  );
  check(eps > 0, () => `eps must be positive, got ${eps}.`);
  const maxWg = opts.maxWorkgroups ?? 65535;
  check(Number.isInteger(maxWg) && maxWg >= 1 && maxWg <= 65535, () => `maxWorkgroups must be an integer in [1, 65535], got ${maxWg}.`);
  registerGatedNormKernels();
  return tidy(() => {
    const [B, L] = y.shape as number[];
    const [M, k, J] = [B! * L!, y.shape[2]! / C, C / groupSize];
    const attrs = { eps, maxWorkgroups: maxWg } satisfies GatedNormAttrs;
    const out = engine().runKernel(
      GATED_NORM_SHARED,
      { y: reshape(y, [M, k, J, groupSize]), z: reshape(z, [M, 1, J, groupSize]) },
      attrs as unknown as NamedAttrMap,
    ) as Tensor;
    return reshape(out, y.shape);
  });
}
