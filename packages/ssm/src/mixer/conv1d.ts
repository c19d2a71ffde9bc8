/**
 * The causal depthwise conv1d of the Mamba-2 mixer fused with its SiLU, `silu(causalConv1d(x, w, b))`,
 * as one kernel per backend with its gradient. On webgpu it replaces tfjs's pad + depthwiseConv2d
 * forward and, above all, its DepthwiseConv2dNativeBackpropFilter backward (one thread per filter
 * element looping over all B·L positions: 170 ms of a 435 ms training step on the H200 at B = 256,
 * L = 256, C = 384) by passes that each read x and dy about once (see conv1d-webgpu.ts).
 */
import {
  assertFloat,
  assertRank,
  check,
  disposeIntermediate,
  fmtShape,
  onEveryBackend,
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
  type Tensor,
  type TensorInfo,
  zerosLike,
} from '@tensorflow/tfjs-core';
import {
  CONV_WG,
  ConvSiluGradXProgram,
  ConvSiluPartialProgram,
  ConvSiluProgram,
  ConvSiluReduceProgram,
  convUniforms,
  convVec,
  rowBlockThreads,
} from './conv1d-webgpu.js';
import { causalConv1dSiluHost } from './mixer-host.js';

export const CONV_SILU = 'T2mdCausalConv1dSilu';
export const CONV_SILU_GRAD = 'T2mdCausalConv1dSiluGrad';

/** Rows per thread of the forward and dx passes by default. */
const CONV_ROWS_PER_THREAD = 4;

/** Longest filter accepted (the WGSL unrolls K² terms; Mamba uses K = 4). */
export const MAX_CONV_K = 16;

interface ConvSiluAttrs {
  /** webgpu: threads per workgroup of the flat passes (default 256; tests lower it to fold the grid cheaply) */
  workgroupSize: number;
  /** webgpu: rows of B·L each thread of the dweight/dbias partial pass sums (0: chosen from the shape) */
  rowsPerSegment: number;
  /** webgpu: consecutive rows each thread of the forward and dx passes computes (default 4) */
  rowsPerThread: number;
}

/** Threads the partial pass aims for (enough to cover an H100/H200's SMs with loads in flight). */
const PARTIAL_THREADS = 1 << 17;
/** Fewest rows a partial-pass thread sums (its K − 1 window loads are then a small extra). */
const MIN_SEGMENT_ROWS = 64;

const sigm = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));

/**
 * The causal conv alone (the pre-activation of the fused op) as a plain loop, PyTorch's definition:
 * `y[b, t, c] = bias[c] + Σ_k w[c, 0, k] x[b, t + k − (K−1), c]`, zeros before t = 0. `[B, L, C]`.
 */
export function causalConv1dValues(x: Float32Array, w: Float32Array, bias: Float32Array, [B, L, C]: number[], K: number): Float32Array {
  const pre = new Float32Array(B * L * C);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < L; t++)
      for (let c = 0; c < C; c++) {
        let acc = bias[c];
        for (let k = 0; k < K; k++) {
          const s = t + k - (K - 1);
          if (s >= 0) acc += w[c * K + k] * x[(b * L + s) * C + c];
        }
        pre[(b * L + t) * C + c] = acc;
      }
  return pre;
}

/** Forward on typed arrays (the reference semantics): `silu(pre)`, x `[B, L, C]`, w `[C, 1, K]`, bias `[C]`. */
export function causalConv1dSiluValues(x: Float32Array, w: Float32Array, bias: Float32Array, shape: number[], K: number): Float32Array {
  const pre = causalConv1dValues(x, w, bias, shape, K);
  for (let i = 0; i < pre.length; i++) pre[i] *= sigm(pre[i]);
  return pre;
}

/** Backward on typed arrays: [dx `[B, L, C]`, dweight `[C, 1, K]`, dbias `[C]`] from dy = dL/dy. */
export function causalConv1dSiluGradValues(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array,
  dy: Float32Array,
  [B, L, C]: number[],
  K: number,
): [Float32Array, Float32Array, Float32Array] {
  const g = causalConv1dValues(x, w, bias, [B, L, C], K);
  for (let i = 0; i < g.length; i++) {
    const s = sigm(g[i]);
    g[i] = dy[i] * s * (1 + g[i] * (1 - s)); // dL/d pre
  }
  const dx = new Float32Array(B * L * C);
  const dw = new Float64Array(C * K);
  const db = new Float64Array(C);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < L; t++)
      for (let c = 0; c < C; c++) {
        const gi = g[(b * L + t) * C + c];
        db[c] += gi;
        for (let k = 0; k < K; k++) {
          const s = t + k - (K - 1);
          if (s < 0) continue;
          dw[c * K + k] += gi * x[(b * L + s) * C + c];
          dx[(b * L + s) * C + c] += w[c * K + k] * gi;
        }
      }
  return [dx, Float32Array.from(dw), Float32Array.from(db)];
}

const jsForward = typedArrayKernel<ConvSiluAttrs>(['x', 'w', 'bias'], (i) => ({
  shape: i.x!.shape,
  values: causalConv1dSiluValues(i.x!.values, i.w!.values, i.bias!.values, i.x!.shape, i.w!.shape[2]),
}));
// wasm: a depthwise conv and x·σ(x) on its XNNPACK kernels (mixer-host.ts), causalConv1dSiluValues its
// reference; cpu keeps the loop (its kernels are loops too); both backward with the loop
const wasmForward: KernelFunc = ({ inputs, backend }) => {
  const { x, w, bias } = inputs as { x: TensorInfo; w: TensorInfo; bias: TensorInfo };
  return causalConv1dSiluHost(backend as KernelBackend, x, w, bias);
};
const jsGrad = typedArrayKernel<ConvSiluAttrs>(['x', 'w', 'bias', 'dy'], (i) => {
  const [dx, dw, db] = causalConv1dSiluGradValues(i.x!.values, i.w!.values, i.bias!.values, i.dy!.values, i.x!.shape, i.w!.shape[2]);
  return [
    { shape: i.x!.shape, values: dx },
    { shape: i.w!.shape, values: dw },
    { shape: i.bias!.shape, values: db },
  ];
});

const gpuForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, w, bias } = inputs as { x: TensorInfo; w: TensorInfo; bias: TensorInfo };
  const a = attrs as unknown as ConvSiluAttrs;
  const program = new ConvSiluProgram(x.shape, w.shape[2], a.workgroupSize, a.rowsPerThread);
  return runProgram(backend, program, [x, w, bias], convUniforms({ L: x.shape[1], ...rowBlockThreads(x.shape, a.rowsPerThread) }));
};

/** Rows per partial-pass thread for `rows` rows of Cv channel vectors. */
export function segmentRows(rows: number, Cv: number, requested: number): number {
  if (requested > 0) return requested;
  return Math.max(MIN_SEGMENT_ROWS, Math.ceil((rows * Cv) / PARTIAL_THREADS));
}

const gpuGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, w, bias, dy } = inputs as { x: TensorInfo; w: TensorInfo; bias: TensorInfo; dy: TensorInfo };
  const a = attrs as unknown as ConvSiluAttrs;
  const [B, L, C] = x.shape;
  const K = w.shape[2];
  const Cv = C / convVec(C);
  const be = backend as KernelBackend;
  const ins = [x, w, bias, dy];
  const dxProgram = new ConvSiluGradXProgram(x.shape, K, a.workgroupSize, a.rowsPerThread);
  const dx = runProgram(be, dxProgram, ins, convUniforms({ L, ...rowBlockThreads(x.shape, a.rowsPerThread) }));
  const rows = B * L;
  const R = segmentRows(rows, Cv, a.rowsPerSegment);
  const P = Math.ceil(rows / R);
  const part = runProgram(be, new ConvSiluPartialProgram(P, x.shape, K, a.workgroupSize), ins, convUniforms({ n: P * Cv, L, Cv, R, rows })); // [P, K + 1, C]
  const red = (wrt: 'w' | 'b') => {
    const program = new ConvSiluReduceProgram(C, K, wrt);
    return runProgram(be, program, [part], program.programUniforms(P));
  };
  const dw = red('w'); // [C, 1, K]
  const db = red('b'); // [C]
  disposeIntermediate(be, part);
  return [dx, dw, db];
};

const kernels: KernelConfig[] = [
  ...onEveryBackend(CONV_SILU, jsForward, gpuForward, wasmForward),
  ...onEveryBackend(CONV_SILU_GRAD, jsGrad, gpuGrad),
];

const grad: GradConfig = {
  kernelName: CONV_SILU,
  inputsToSave: ['x', 'w', 'bias'],
  gradFunc: (dy, saved, attrs) => {
    const [x, w, bias] = saved;
    // no rows to sum (B·L = 0): zero gradients (the webgpu reduce cannot bind an empty partials buffer)
    if (x!.size === 0) return { x: () => zerosLike(x!), w: () => zerosLike(w!), bias: () => zerosLike(bias!) };
    const [dx, dw, db] = engine().runKernel(CONV_SILU_GRAD, { x, w, bias, dy: dy as Tensor }, attrs as NamedAttrMap) as Tensor[];
    return { x: () => dx, w: () => dw, bias: () => db };
  },
};

/** Registers the fused conv + SiLU kernels (cpu, wasm, webgpu) and their gradient; idempotent. */
export function registerConv1dKernels(): void {
  registerKernelsOnce(kernels, [grad]);
}

/**
 * `silu(causalConv1d(x, weight, bias))` as one kernel, differentiable in x, weight and bias, on cpu,
 * wasm and webgpu: `y[b, t, c] = silu(bias[c] + Σ_k weight[c, 0, k] x[b, t + k − (K−1), c])`, zeros
 * before t = 0 (mamba_ssm's `act(conv1d(xBC.transpose(1, 2))[..., :L])`).
 * @param x `[B, L, C]` float32
 * @param weight `[C, 1, K]` (PyTorch layout), 1 ≤ K ≤ 16
 * @param bias `[C]`
 * @param opts webgpu only, for tests and tuning: `workgroupSize` of the flat passes (a power of two
 *   ≤ 256, default 256), `rowsPerThread` of the forward and dx passes (1..8, default 4) and
 *   `rowsPerSegment` of the dweight/dbias partial pass (default: chosen from the shape)
 * @returns `[B, L, C]`
 */
export function causalConv1dSilu(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  opts: { workgroupSize?: number; rowsPerThread?: number; rowsPerSegment?: number } = {},
): Tensor {
  assertFloat('x', x);
  assertFloat('weight', weight);
  assertFloat('bias', bias);
  assertRank('x', x, 3);
  const C = x.shape[2]!;
  check(
    weight.rank === 3 && weight.shape[0] === C && weight.shape[1] === 1,
    () => `weight must be [C, 1, K] with C = ${C} (the channels of x ${fmtShape(x.shape)}), got ${fmtShape(weight.shape)}.`,
  );
  const K = weight.shape[2]!;
  check(K >= 1 && K <= MAX_CONV_K, () => `the conv width K (weight's last axis) must be in 1..${MAX_CONV_K}, got ${K}.`);
  check(bias.rank === 1 && bias.shape[0] === C, () => `bias must be [${C}] (the channels of x), got ${fmtShape(bias.shape)}.`);
  const wg = opts.workgroupSize ?? CONV_WG;
  check(Number.isInteger(Math.log2(wg)) && wg <= 256, () => `workgroupSize must be a power of two in 1..256, got ${wg}.`);
  const rps = opts.rowsPerSegment ?? 0;
  check(Number.isInteger(rps) && rps >= 0, () => `rowsPerSegment must be a non-negative integer, got ${rps}.`);
  const tt = opts.rowsPerThread ?? CONV_ROWS_PER_THREAD;
  check(Number.isInteger(tt) && tt >= 1 && tt <= 8, () => `rowsPerThread must be an integer in 1..8, got ${tt}.`);
  registerConv1dKernels();
  const attrs: ConvSiluAttrs = { workgroupSize: wg, rowsPerSegment: rps, rowsPerThread: tt };
  return engine().runKernel(CONV_SILU, { x, w: weight, bias }, attrs as unknown as NamedAttrMap) as Tensor;
}
