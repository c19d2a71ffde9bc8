import {
  assertFloat,
  check,
  type ElementwiseLayout,
  fmtShape,
  HostOps,
  layoutOf,
  onEveryBackend,
  registerKernelsOnce,
  resolveElementwiseLayout,
  runProgram,
} from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import {
  engine,
  type GradConfig,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { AdaNormProgram, AdaNormRowProgram } from './ada-norm-webgpu.js';
import { adaNormHost } from './dit-host.js';
import { adaNormDx, fusedModGrad, modGradAda } from './mod-grad.js';

export const ADA_NORM = 'T2mdAdaNorm';

/** Which rows of the modulation tensor hold the shift and the scale, and the LayerNorm epsilon. */
export interface AdaNormAttrs {
  shiftIdx: number;
  scaleIdx: number;
  eps: number;
}

/**
 * adaLN modulation of a LayerNorm without affine parameters, as one kernel:
 * `modulate(LN(x), ada[:, shiftIdx], ada[:, scaleIdx])` = (x − μ)/√(σ² + eps) · (1 + scale) + shift,
 * μ and σ² over the last axis. Replaces ~10 tfjs ops (LN, two slices, the modulation) by one pass over
 * x; differentiable in x and ada (the gradient is made of tfjs ops).
 * @param x `[N, T, D]` float32
 * @param ada `[N, K, D]` float32 (PixArt's `scale_shift_table + t0`, K = 6 in a block, 2 in the final layer)
 * @param opts.layout the WebGPU row program's layout ('auto' = the measured defaults; for benchmarks)
 * @returns `[N, T, D]`
 */
export function adaNorm(
  x: Tensor,
  ada: Tensor,
  shiftIdx: number,
  scaleIdx: number,
  eps = 1e-6,
  opts: { layout?: ElementwiseLayout } = {},
): Tensor {
  assertFloat('x', x);
  assertFloat('ada', ada);
  check(x.rank === 3, () => `x must have shape [N, T, D], got ${fmtShape(x.shape)}.`);
  const [N, , D] = x.shape;
  check(
    ada.rank === 3 && ada.shape[0] === N && ada.shape[2] === D,
    () => `ada must have shape [${N}, K, ${D}] to modulate x ${fmtShape(x.shape)}, got ${fmtShape(ada.shape)}.`,
  );
  const K = ada.shape[1]!;
  check(
    Number.isInteger(shiftIdx) &&
      Number.isInteger(scaleIdx) &&
      shiftIdx >= 0 &&
      scaleIdx >= 0 &&
      shiftIdx < K &&
      scaleIdx < K &&
      shiftIdx !== scaleIdx,
    () => `shiftIdx (${shiftIdx}) and scaleIdx (${scaleIdx}) must be distinct rows of ada ${fmtShape(ada.shape)}.`,
  );
  const layout = resolveElementwiseLayout(opts.layout);
  registerKernelsOnce(adaNormKernels, [adaNormGrad]);
  const attrs: AdaNormAttrs = { shiftIdx, scaleIdx, eps, ...layout };
  return engine().runKernel(ADA_NORM, { x, ada }, attrs as unknown as tf.NamedAttrMap) as Tensor;
}

/** The same maths from tfjs-core ops (reference for tests, and the pieces of the gradient). */
export function adaNormRef(x: Tensor, ada: Tensor, shiftIdx: number, scaleIdx: number, eps = 1e-6): Tensor {
  return tf.tidy(() => {
    const [N, , D] = x.shape;
    const mean = tf.mean(x, -1, true);
    const xc = tf.sub(x, mean);
    const xhat = tf.mul(xc, tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps)));
    const shift = tf.slice(ada, [0, shiftIdx, 0], [N, 1, D]);
    const scale = tf.slice(ada, [0, scaleIdx, 0], [N, 1, D]);
    return tf.add(tf.mul(xhat, tf.add(scale, 1)), shift);
  });
}

/** Plain loops over typed arrays: the cpu and wasm kernel before, now the reference (`@t2md/dit/testing`). */
export function adaNormValues(
  x: Float32Array,
  ada: Float32Array,
  N: number,
  T: number,
  D: number,
  K: number,
  a: AdaNormAttrs,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < N * T; r++) {
    const base = r * D;
    let s = 0;
    for (let d = 0; d < D; d++) s += x[base + d];
    const mean = s / D;
    let q = 0;
    for (let d = 0; d < D; d++) q += (x[base + d] - mean) ** 2;
    const rstd = 1 / Math.sqrt(q / D + a.eps);
    const ab = Math.floor(r / T) * K * D;
    const sh = ab + a.shiftIdx * D;
    const sc = ab + a.scaleIdx * D;
    for (let d = 0; d < D; d++) out[base + d] = (x[base + d] - mean) * rstd * (1 + ada[sc + d]) + ada[sh + d];
  }
  return out;
}

/**
 * cpu: adaNormValues' loops in place on the backend's memory (no copies in or out): the same float64
 * arithmetic in the same order, so the same float32 results. (wasm runs adaNormHost, dit-host.ts.)
 */
const jsForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, ada } = inputs as { x: TensorInfo; ada: TensorInfo };
  const a = attrs as unknown as AdaNormAttrs;
  const [N, T, D] = x.shape as [number, number, number];
  const K = ada.shape[1]!;
  const ops = new HostOps(backend as KernelBackend);
  const outT = ops.keep(ops.empty(x.shape));
  const [out, xv, av] = [ops.values(outT), ops.values(x), ops.values(ada)];
  for (let r = 0; r < N * T; r++) {
    const base = r * D;
    let s = 0;
    for (let d = 0; d < D; d++) s += xv[base + d]!;
    const mean = s / D;
    let q = 0;
    for (let d = 0; d < D; d++) q += (xv[base + d]! - mean) ** 2;
    const rstd = 1 / Math.sqrt(q / D + a.eps);
    const ab = Math.floor(r / T) * K * D;
    const sh = ab + a.shiftIdx * D;
    const sc = ab + a.scaleIdx * D;
    for (let d = 0; d < D; d++) out[base + d] = (xv[base + d]! - mean) * rstd * (1 + av[sc + d]!) + av[sh + d]!;
  }
  ops.dispose();
  return outT;
};

const gpuForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, ada } = inputs as { x: TensorInfo; ada: TensorInfo };
  const a = attrs as unknown as AdaNormAttrs;
  const [N, T, D] = x.shape;
  const c = layoutOf(attrs);
  // one workgroup per row while a row fits its registers; wider rows take the three-pass program
  if (AdaNormRowProgram.fits(D, c)) {
    const program = new AdaNormRowProgram(x.shape, c);
    return runProgram(backend, program, [x, ada], program.programUniforms(ada.shape[1]!, a));
  }
  return runProgram(
    backend,
    new AdaNormProgram(x.shape),
    [x, ada],
    [
      { type: 'int32', data: [T] },
      { type: 'int32', data: [D] },
      { type: 'int32', data: [ada.shape[1]] },
      { type: 'int32', data: [a.shiftIdx] },
      { type: 'int32', data: [a.scaleIdx] },
      { type: 'int32', data: [N * T] },
      { type: 'float32', data: [a.eps] },
    ],
  );
};

// wasm: its XNNPACK kernels (dit-host.ts: about twice as fast as the loop), adaNormValues its reference
const wasmForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, ada } = inputs as { x: TensorInfo; ada: TensorInfo };
  return adaNormHost(backend as KernelBackend, x, ada, attrs as unknown as AdaNormAttrs);
};

export const adaNormKernels: KernelConfig[] = [...onEveryBackend(ADA_NORM, jsForward, gpuForward, wasmForward)];

/**
 * With x̂ = (x − μ)·rstd and g = dy·(1 + scale):
 * dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) (means over D); dshift = Σ_T dy; dscale = Σ_T dy·x̂; the
 * other rows of ada get zeros.
 */
export const adaNormGrad: GradConfig = {
  kernelName: ADA_NORM,
  inputsToSave: ['x', 'ada'],
  gradFunc: (dy, saved, attrs) => {
    const [x, ada] = saved;
    const a = attrs as unknown as AdaNormAttrs;
    const dyT = dy as Tensor;
    const [N, , D] = x.shape;
    const K = ada.shape[1]!;
    if (fusedModGrad(D)) {
      // webgpu: 4 dispatches instead of ~30 tfjs ops (mod-grad.ts)
      return {
        x: () => adaNormDx(x, dyT, ada, a.scaleIdx, a.eps),
        ada: () => modGradAda('norm', dyT, x, K, a.shiftIdx, a.scaleIdx, a.eps),
      };
    }
    const norm = () => {
      const xc = tf.sub(x, tf.mean(x, -1, true));
      const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), a.eps));
      return { rstd, xhat: tf.mul(xc, rstd) };
    };
    return {
      x: () => {
        const { rstd, xhat } = norm();
        const g = tf.mul(dyT, tf.add(tf.slice(ada, [0, a.scaleIdx, 0], [N, 1, D]), 1));
        return tf.mul(rstd, tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true))));
      },
      ada: () => {
        const { xhat } = norm();
        const dShift = tf.sum(dyT, 1, true); // [N, 1, D]
        const dScale = tf.sum(tf.mul(dyT, xhat), 1, true); // [N, 1, D]
        const zero = tf.zeros([N, 1, D]);
        const rows = Array.from({ length: K }, (_, k) => (k === a.shiftIdx ? dShift : k === a.scaleIdx ? dScale : zero));
        return tf.concat(rows, 1); // [N, K, D]
      },
    };
  },
};

/**
 * LayerNorm over the last axis with an affine weight and bias (PyTorch's `nn.LayerNorm`), through
 * adaNorm's kernels: all rows form one batch entry whose modulation rows are (bias, weight − 1), so
 * the forward is one kernel and, on webgpu, the backward a handful (instead of ~9 and ~25 tfjs ops).
 * `1 + (weight − 1)` rounds to weight within an ulp.
 * @param x `[..., D]`; weight, bias `[D]`
 */
export function affineLayerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  const D = x.shape[x.rank - 1]!;
  check(
    weight.rank === 1 && weight.shape[0] === D && bias.rank === 1 && bias.shape[0] === D,
    () =>
      `weight and bias must have shape [${D}] to normalise x ${fmtShape(x.shape)}, got ${fmtShape(weight.shape)} and ${fmtShape(bias.shape)}.`,
  );
  return tf.tidy(() => {
    const ada = tf.reshape(tf.stack([bias, tf.sub(weight, 1)]), [1, 2, D]); // [1, 2, D]: shift, scale
    return tf.reshape(adaNorm(tf.reshape(x, [1, x.size / D, D]), ada, 0, 1, eps), x.shape);
  });
}
