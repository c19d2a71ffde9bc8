import {
  engine,
  type GradConfig,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { layoutOf } from '../kernel/elementwise-config.js';
import { ElementwiseProgram } from '../kernel/elementwise-program.js';
import { onEveryBackend } from '../kernel/register.js';
import { typedArrayKernel } from '../kernel/typed-array-kernel.js';
import { runProgram } from '../kernel/webgpu-program.js';
import { geluTanhGradHost, geluTanhHost } from './gelu-tanh-host.js';
import { geluTanhGradSpec, geluTanhSpec } from './gelu-tanh-webgpu.js';

export const GELU_TANH = 'T2mdGeluTanh';
export const GELU_TANH_GRAD = 'T2mdGeluTanhGrad';

const C = Math.sqrt(2 / Math.PI);
const K = 0.044715;

/**
 * σ(2u) and σ(−2u) for u = √(2/π)(x + 0.044715x³): 0.5·(1 + tanh(u)) = σ(2u), taken without the
 * cancellation of 1 + tanh(u), which is 0 even in float64 for x < −6.5 while GELU(x) is still 1e-17.
 */
function sigmoids(v: number): [number, number] {
  const u = C * (v + K * v * v * v);
  return [1 / (1 + Math.exp(-2 * u)), 1 / (1 + Math.exp(2 * u))];
}

/**
 * Reference maths on typed arrays (float64 inside): the cpu kernel, and the wasm kernel's reference
 * (exported from `@t2md/core/testing`).
 */
export function geluTanhValues(x: Float32Array): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * sigmoids(x[i])[0];
  return y;
}

export function geluTanhGradValues(dy: Float32Array, x: Float32Array): Float32Array {
  const dx = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    const [s, sc] = sigmoids(v);
    dx[i] = dy[i] * (s + 2 * v * s * sc * C * (1 + 3 * K * v * v));
  }
  return dx;
}

// cpu runs the loops (its kernels are loops too: one fused pass is its best form); wasm the
// composition of its XNNPACK kernels (gelu-tanh-host.ts)
const jsForward = typedArrayKernel(['x'], (i) => ({ shape: i.x!.shape, values: geluTanhValues(i.x!.values) }));
const jsGrad = typedArrayKernel(['dy', 'x'], (i) => ({ shape: i.x!.shape, values: geluTanhGradValues(i.dy!.values, i.x!.values) }));
const wasmForward: KernelFunc = ({ inputs, backend }) => geluTanhHost(backend as KernelBackend, inputs.x as TensorInfo);
const wasmGrad: KernelFunc = ({ inputs, backend }) =>
  geluTanhGradHost(backend as KernelBackend, inputs.dy as TensorInfo, inputs.x as TensorInfo);

// the elementwise layout travels in the attributes (geluTanh's `layout` option), to the gradient too
const gpuForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = inputs.x as TensorInfo;
  return runProgram(backend, new ElementwiseProgram(geluTanhSpec, x.shape, layoutOf(attrs)), [x]);
};
const gpuGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  return runProgram(backend, new ElementwiseProgram(geluTanhGradSpec, x.shape, layoutOf(attrs)), [dy, x]);
};

export const geluTanhKernels: KernelConfig[] = [
  ...onEveryBackend(GELU_TANH, jsForward, gpuForward, wasmForward),
  ...onEveryBackend(GELU_TANH_GRAD, jsGrad, gpuGrad, wasmGrad),
];

export const geluTanhGrad: GradConfig = {
  kernelName: GELU_TANH,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => {
    const [x] = saved;
    return { x: () => engine().runKernel(GELU_TANH_GRAD, { dy: dy as Tensor, x }, attrs) as Tensor };
  },
};
