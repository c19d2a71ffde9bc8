/**
 * Kernels of `selectiveScan` for cpu and wasm (plain loops, scan-js.ts) and webgpu (chunked programs,
 * scan-webgpu.ts), and the gradient. Letters: B batch, D dim, G ngroups, N dstate, L seqlen.
 *
 * `T2mdSelectiveScan` (fused forward): u, delta [B, D, L], A [D, N], B, C [B, G, N, L], D, deltaBias [D],
 * z [B, D, L] (or a [1] placeholder when attrs.hasZ is false) → y [B, D, L], lastState [B, D, N].
 * `T2mdSelectiveScanBackward` (core scan only): u, dt (δ after bias and softplus), A, B, C, gy (upstream
 * of the un-gated, D-less output), gLast → gdt, gu, ys [B, D, L], gA [D, N], gB, gC [B, G, N, L].
 * The gradient wraps the core backward with the elementwise parts (bias, softplus, D, silu(z)) in tfjs ops.
 */
import { disposeIntermediate, onEveryBackend, runProgram, type TypedOutput, typedArrayKernel } from '@t2md/core';
import type { GradConfig, KernelBackend, KernelConfig, KernelFunc, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { type ScanDims, selectiveScanBackward, selectiveScanForward } from './scan-js.js';
import {
  BackwardProgram,
  BWD_CHUNK,
  backwardLayout,
  ChunkCombineProgram,
  ChunkOutputProgram,
  ChunkSummaryProgram,
  dimUniforms,
  GatherSumProgram,
  ReverseCombineProgram,
  ReverseSummaryProgram,
} from './scan-webgpu.js';

export const SELECTIVE_SCAN = 'T2mdSelectiveScan';
export const SELECTIVE_SCAN_BACKWARD = 'T2mdSelectiveScanBackward';

/** Attributes of the forward kernel. `chunkSize` 0 lets the webgpu kernel choose. */
export interface SelectiveScanAttrs {
  deltaSoftplus: boolean;
  hasZ: boolean;
  chunkSize: number;
  /**
   * Whether the kernel has the lastState output. Without it the kernel has one output: tfjs builds a
   * zero dy on the CPU for every output nobody used and uploads it on each backward.
   */
  returnLast: boolean;
}

/** Sizes from u [B, D, L] and B [B, G, N, L]. */
function dimsOf(u: { shape: number[] }, B: { shape: number[] }): ScanDims {
  const [batch, dim, seqlen] = u.shape;
  return { batch, dim, seqlen, ngroups: B.shape[1], dstate: B.shape[2] };
}

/**
 * The forward chunk length on webgpu: enough chunks that batch·dim·nChunks work items fill a large GPU
 * (~2^17 threads), at most 256 steps (beyond that the stored states are few anyway), a multiple of 16
 * (the staged tile). On an H100 (b = 1, dim 4608, dstate 16) lengths 64–1024 timed within 5%.
 */
export function selectiveScanChunkSize(batchDim: number, seqlen: number): number {
  const wantChunks = Math.max(1, Math.ceil(2 ** 17 / batchDim));
  const chunk = Math.ceil(seqlen / wantChunks / 16) * 16;
  return Math.min(Math.max(chunk, 32), 256);
}

// ---- cpu and wasm ----

const jsForward = typedArrayKernel<SelectiveScanAttrs>(['u', 'delta', 'A', 'B', 'C', 'D', 'z', 'deltaBias'], (i, attrs) => {
  const dims = dimsOf(i.u!, i.B!);
  const { y, lastState } = selectiveScanForward(
    {
      u: i.u!.values,
      delta: i.delta!.values,
      A: i.A!.values,
      B: i.B!.values,
      C: i.C!.values,
      D: i.D!.values,
      deltaBias: i.deltaBias!.values,
      z: attrs.hasZ ? i.z!.values : undefined,
    },
    dims,
    attrs.deltaSoftplus,
  );
  const out: TypedOutput[] = [{ shape: i.u!.shape, values: Float32Array.from(y) }];
  if (attrs.returnLast) out.push({ shape: [dims.batch, dims.dim, dims.dstate], values: Float32Array.from(lastState) });
  return out;
});

const jsBackward = typedArrayKernel(['u', 'dt', 'A', 'B', 'C', 'gy', 'gLast'], (i) => {
  const dims = dimsOf(i.u!, i.B!);
  const g = selectiveScanBackward(
    { u: i.u!.values, dt: i.dt!.values, A: i.A!.values, B: i.B!.values, C: i.C!.values, gy: i.gy!.values, gLast: i.gLast!.values },
    dims,
  );
  return [
    { shape: i.u!.shape, values: g.gdt },
    { shape: i.u!.shape, values: g.gu },
    { shape: i.u!.shape, values: g.ys },
    { shape: i.A!.shape, values: g.gA },
    { shape: i.B!.shape, values: g.gB },
    { shape: i.B!.shape, values: g.gC },
  ];
});

// ---- webgpu ----

/** Runs a GatherSumProgram: out[o, i] = Σ_k src[offset + o·outerStride + k·kStride + i]. */
function gatherSum(
  backend: KernelBackend,
  src: TensorInfo,
  shape: number[],
  p: { inner: number; outerStride?: number; kStride?: number; kCount?: number; offset?: number },
): TensorInfo {
  const u = [p.inner, p.outerStride ?? 0, p.kStride ?? 0, p.kCount ?? 1, p.offset ?? 0];
  return runProgram(
    backend,
    new GatherSumProgram(shape),
    [src],
    u.map((v) => ({ type: 'int32' as const, data: [v] })),
  );
}

const gpuForward: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const backend = b as KernelBackend;
  const { u, delta, A, B, C, D, z, deltaBias } = inputs as Record<string, TensorInfo>;
  const { deltaSoftplus, hasZ, chunkSize, returnLast } = attrs as unknown as SelectiveScanAttrs;
  const dims = dimsOf(u, B);
  const { batch, dim, dstate, seqlen } = dims;
  const chunk = chunkSize > 0 ? chunkSize : selectiveScanChunkSize(batch * dim, seqlen);
  const nChunks = Math.ceil(seqlen / chunk);
  const uni = dimUniforms(dims, chunk, { softplus: deltaSoftplus, hasZ });
  const summary = runProgram(backend, new ChunkSummaryProgram(batch, dim, nChunks, dstate, true), [u, delta, A, B, deltaBias], uni);
  const states = runProgram(backend, new ChunkCombineProgram(batch, dim, nChunks, dstate), [summary, A], uni);
  const y = runProgram(
    backend,
    new ChunkOutputProgram(batch, dim, seqlen, nChunks),
    [u, delta, A, B, C, states, D, deltaBias, z], // z: a [1] placeholder unless hasZ
    uni,
  );
  if (!returnLast) {
    disposeIntermediate(backend, summary, states);
    return [y];
  }
  const lastState = gatherSum(backend, states, [batch, dim, dstate], {
    inner: dstate,
    outerStride: (nChunks + 1) * dstate,
    offset: nChunks * dstate,
  });
  disposeIntermediate(backend, summary, states);
  return [y, lastState];
};

const gpuBackward: KernelFunc = ({ inputs, backend: b }) => {
  const backend = b as KernelBackend;
  const { u, dt, A, B, C, gy, gLast } = inputs as Record<string, TensorInfo>;
  const dims = dimsOf(u, B);
  const { batch, dim, dstate, seqlen, ngroups } = dims;
  const lay = backwardLayout(dims);
  const nChunks = lay.nChunks;
  const uni = dimUniforms(dims, BWD_CHUNK);
  const summary = runProgram(backend, new ChunkSummaryProgram(batch, dim, nChunks, dstate, false), [u, dt, A, B], uni);
  const states = runProgram(backend, new ChunkCombineProgram(batch, dim, nChunks, dstate), [summary, A], uni);
  const carry = runProgram(backend, new ReverseSummaryProgram(batch, dim, nChunks, dstate), [dt, A, C, gy], uni);
  const enter = runProgram(backend, new ReverseCombineProgram(batch, dim, nChunks, dstate), [summary, carry, A, gLast], uni);
  const extra = [lay.dBlocks, lay.gA, lay.gB, lay.gC].map((v) => ({ type: 'int32' as const, data: [v] }));
  const packed = runProgram(
    backend,
    new BackwardProgram(lay.size, batch * ngroups * nChunks * lay.dBlocks),
    [u, dt, A, B, C, gy, states, enter],
    [...uni, ...extra],
  );
  const bdl = lay.bdl;
  const nl = dstate * seqlen;
  const out = [
    gatherSum(backend, packed, u.shape, { inner: bdl, offset: lay.gdt }),
    gatherSum(backend, packed, u.shape, { inner: bdl, offset: lay.gu }),
    gatherSum(backend, packed, u.shape, { inner: bdl, offset: lay.ys }),
    gatherSum(backend, packed, A.shape, { inner: dim * dstate, kStride: dim * dstate, kCount: batch * nChunks, offset: lay.gA }),
    gatherSum(backend, packed, B.shape, { inner: nl, outerStride: lay.dBlocks * nl, kStride: nl, kCount: lay.dBlocks, offset: lay.gB }),
    gatherSum(backend, packed, B.shape, { inner: nl, outerStride: lay.dBlocks * nl, kStride: nl, kCount: lay.dBlocks, offset: lay.gC }),
  ];
  disposeIntermediate(backend, summary, states, carry, enter, packed);
  return out;
};

export const selectiveScanKernels: KernelConfig[] = [
  ...onEveryBackend(SELECTIVE_SCAN, jsForward, gpuForward),
  ...onEveryBackend(SELECTIVE_SCAN_BACKWARD, jsBackward, gpuBackward),
];

/**
 * Gradient of the fused forward. δ' = softplus?(delta + deltaBias), g = silu(z); the core backward
 * gives ∂/∂δ', ∂/∂u (scan part), A, B, C and the un-gated scan output ys; the rest is elementwise:
 * ∂delta = ∂δ' σ(delta + bias), ∂u += gy D, ∂D = Σ gy u, ∂z = dy (ys + D u) silu'(z).
 */
export const selectiveScanGrad: GradConfig = {
  kernelName: SELECTIVE_SCAN,
  // All eight are always passed (the op fills absent D and deltaBias with zeros and z with a placeholder).
  inputsToSave: ['u', 'delta', 'A', 'B', 'C', 'D', 'z', 'deltaBias'],
  gradFunc: (dys: Tensor | Tensor[], saved: Tensor[], attrs?: NamedAttrMap) => {
    // one tensor when the forward ran without its lastState output (attrs.returnLast false)
    const [dy, dLastIn] = Array.isArray(dys) ? dys : [dys, null];
    const [u, delta, A, B, C, D, z, deltaBias] = saved;
    // fill runs on the backend (a GPU program on webgpu), not a host-built zeros upload
    const dLast = dLastIn ?? tf.fill([u.shape[0], u.shape[1] as number, B.shape[2] as number], 0);
    const { deltaSoftplus, hasZ } = attrs as unknown as SelectiveScanAttrs;
    const dim = u.shape[1] as number;
    const Dcol = tf.reshape(D, [dim, 1]);
    const dtRaw = tf.add(delta, tf.reshape(deltaBias, [dim, 1])); // [B, D, L]
    const dt = deltaSoftplus ? tf.softplus(dtRaw) : dtRaw;
    const sz = hasZ ? tf.sigmoid(z) : undefined;
    const gy = sz ? tf.mul(dy, tf.mul(z, sz)) : dy; // upstream of the un-gated output
    const [gdt, gu, ys, gA, gB, gC] = tf.engine().runKernel(SELECTIVE_SCAN_BACKWARD, { u, dt, A, B, C, gy, gLast: dLast }) as Tensor[];
    const gDelta = deltaSoftplus ? tf.mul(gdt, tf.sigmoid(dtRaw)) : gdt;
    return {
      u: () => tf.add(gu, tf.mul(gy, Dcol)),
      delta: () => gDelta,
      A: () => gA,
      B: () => gB,
      C: () => gC,
      D: () => tf.sum(tf.mul(gy, u), [0, 2]),
      deltaBias: () => tf.sum(gDelta, [0, 2]),
      z: () => {
        if (!sz) return tf.zerosLike(z);
        const yPre = tf.add(ys, tf.mul(u, Dcol));
        const dSilu = tf.mul(sz, tf.add(1, tf.mul(z, tf.sub(1, sz)))); // silu'(z) = σ(z)(1 + z(1 − σ(z)))
        return tf.mul(tf.mul(dy, yPre), dSilu);
      },
    };
  },
};
