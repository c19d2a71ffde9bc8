import {
  assertFloat,
  check,
  type ElementwiseLayout,
  ElementwiseProgram,
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
import { gatedAddHost } from './dit-host.js';
import { gatedAddSpec } from './gated-add-webgpu.js';
import { fusedModGrad, gatedMul, modGradAda } from './mod-grad.js';

export const GATED_ADD = 'T2mdGatedAdd';

interface GatedAddAttrs {
  gateIdx: number;
}

/**
 * The gated residual of an adaLN block, `x + ada[:, gateIdx] · m`, as one kernel (instead of a
 * slice, a multiply and an add). Differentiable in x, m and ada.
 * @param x `[N, T, D]` residual stream
 * @param m `[N, T, D]` branch output
 * @param ada `[N, K, D]` modulation rows
 * @param opts.layout the WebGPU program's layout ('auto' = the measured defaults; for benchmarks)
 * @returns `[N, T, D]`
 */
export function gatedAdd(x: Tensor, m: Tensor, ada: Tensor, gateIdx: number, opts: { layout?: ElementwiseLayout } = {}): Tensor {
  assertFloat('x', x);
  assertFloat('m', m);
  assertFloat('ada', ada);
  check(
    x.rank === 3 && m.rank === 3 && x.shape.every((s, i) => s === m.shape[i]),
    () => `x and m must have the same shape [N, T, D], got ${fmtShape(x.shape)} and ${fmtShape(m.shape)}.`,
  );
  const [N, , D] = x.shape;
  check(
    ada.rank === 3 && ada.shape[0] === N && ada.shape[2] === D,
    () => `ada must have shape [${N}, K, ${D}] to gate x ${fmtShape(x.shape)}, got ${fmtShape(ada.shape)}.`,
  );
  check(
    Number.isInteger(gateIdx) && gateIdx >= 0 && gateIdx < ada.shape[1]!,
    () => `gateIdx (${gateIdx}) must be a row of ada ${fmtShape(ada.shape)}.`,
  );
  const layout = resolveElementwiseLayout(opts.layout);
  registerKernelsOnce(gatedAddKernels, [gatedAddGrad]);
  return engine().runKernel(GATED_ADD, { x, m, ada }, { gateIdx, ...layout } as unknown as tf.NamedAttrMap) as Tensor;
}

/** The same from tfjs-core ops (the reference for tests). */
export function gatedAddRef(x: Tensor, m: Tensor, ada: Tensor, gateIdx: number): Tensor {
  return tf.tidy(() => {
    const [N, , D] = x.shape;
    return tf.add(x, tf.mul(tf.slice(ada, [0, gateIdx, 0], [N, 1, D]), m));
  });
}

/**
 * The plain loop the cpu and wasm kernel ran before (the reference; `@t2md/dit/testing`): x, m
 * `[N, T, D]`, ada `[N, K, D]` flat.
 */
export function gatedAddValues(
  x: Float32Array,
  m: Float32Array,
  ada: Float32Array,
  [, T, D]: number[],
  K: number,
  gateIdx: number,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let k = 0; k < x.length; k++) {
    const n = Math.floor(k / (T * D));
    out[k] = x[k] + ada[(n * K + gateIdx) * D + (k % D)] * m[k];
  }
  return out;
}

/**
 * cpu: the same sums row by row, in place on the backend's memory (no copies in or out, no
 * index division per element): the same float64 arithmetic, so the same float32 results.
 */
const jsForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, m, ada } = inputs as { x: TensorInfo; m: TensorInfo; ada: TensorInfo };
  const { gateIdx } = attrs as unknown as GatedAddAttrs;
  const [N, T, D] = x.shape as [number, number, number];
  const K = ada.shape[1]!;
  const ops = new HostOps(backend as KernelBackend);
  const outT = ops.keep(ops.empty(x.shape));
  const [out, xv, mv, av] = [ops.values(outT), ops.values(x), ops.values(m), ops.values(ada)];
  for (let n = 0; n < N; n++) {
    const g = (n * K + gateIdx) * D;
    for (let t = 0; t < T; t++) {
      const o = (n * T + t) * D;
      for (let d = 0; d < D; d++) out[o + d] = xv[o + d]! + av[g + d]! * mv[o + d]!;
    }
  }
  ops.dispose();
  return outT;
};

const gpuForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, m, ada } = inputs as { x: TensorInfo; m: TensorInfo; ada: TensorInfo };
  const [, T, D] = x.shape;
  return runProgram(
    backend,
    new ElementwiseProgram(gatedAddSpec(D), x.shape, layoutOf(attrs)),
    [x, m, ada],
    [
      { type: 'int32', data: [T * D] },
      { type: 'int32', data: [D] },
      { type: 'int32', data: [ada.shape[1]] },
      { type: 'int32', data: [(attrs as unknown as GatedAddAttrs).gateIdx] },
    ],
  );
};

// wasm: a broadcast Multiply and an Add on its XNNPACK kernels (dit-host.ts), gatedAddValues its reference
const wasmForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, m, ada } = inputs as { x: TensorInfo; m: TensorInfo; ada: TensorInfo };
  return gatedAddHost(backend as KernelBackend, x, m, ada, (attrs as unknown as GatedAddAttrs).gateIdx);
};

export const gatedAddKernels: KernelConfig[] = [...onEveryBackend(GATED_ADD, jsForward, gpuForward, wasmForward)];

/** dx = dy; dm = dy · gate; dada = Σ_T dy · m in row gateIdx, zeros elsewhere. */
export const gatedAddGrad: GradConfig = {
  kernelName: GATED_ADD,
  inputsToSave: ['m', 'ada'],
  gradFunc: (dy, saved, attrs) => {
    const [m, ada] = saved;
    const { gateIdx } = attrs as unknown as GatedAddAttrs;
    const dyT = dy as Tensor;
    const [N, , D] = m.shape;
    if (fusedModGrad(D)) {
      // webgpu: 3 dispatches instead of ~7 tfjs ops (mod-grad.ts)
      return {
        x: () => tf.clone(dyT),
        m: () => gatedMul(dyT, ada, gateIdx),
        ada: () => modGradAda('gate', dyT, m, ada.shape[1]!, gateIdx),
      };
    }
    return {
      x: () => tf.clone(dyT),
      m: () => tf.mul(dyT, tf.slice(ada, [0, gateIdx, 0], [N, 1, D])),
      ada: () => {
        const dGate = tf.sum(tf.mul(dyT, m), 1, true); // [N, 1, D]
        const zero = tf.zeros([N, 1, D]);
        return tf.concat(
          Array.from({ length: ada.shape[1]! }, (_, k) => (k === gateIdx ? dGate : zero)),
          1,
        ); // [N, K, D]
      },
    };
  },
};
