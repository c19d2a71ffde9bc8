/**
 * The adaLN gradients as WebGPU kernels (see mod-grad-webgpu.ts): the backward passes of `adaNorm`
 * and `gatedAdd` call these on webgpu instead of their tfjs-op formulas, which stay the cpu/wasm path
 * and the reference the tests compare with. No second derivatives: these kernels have no gradients.
 */
import { disposeIntermediate, ElementwiseProgram, type ElementwiseSpec, registerKernelsOnce, runProgram } from '@t2md/core';
import type { KernelConfig, KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { AdaNormGradXProgram, gradRowLayout, ModGradPartialProgram, ModGradRowsProgram } from './mod-grad-webgpu.js';

const ADA_NORM_DX = 'T2mdAdaNormGradX';
const MOD_GRAD_ADA = 'T2mdModGradAda';
const GATED_MUL = 'T2mdGatedMul';

/** Workgroups the partial-sum pass aims for, and the fewest rows one of them sums. */
const PARTIAL_WORKGROUPS = 1024;
const MIN_ROWS = 4;

interface DxAttrs {
  scaleIdx: number;
  eps: number;
}

interface AdaAttrs {
  kind: 'norm' | 'gate';
  K: number;
  row0: number;
  row1: number;
  eps: number;
}

const gpuDx: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy, ada } = inputs as { x: TensorInfo; dy: TensorInfo; ada: TensorInfo };
  const { scaleIdx, eps } = attrs as unknown as DxAttrs;
  const program = new AdaNormGradXProgram(x.shape, gradRowLayout(x.shape[2]!)!);
  return runProgram(backend, program, [x, dy, ada], program.programUniforms(ada.shape[1]!, scaleIdx, eps));
};

const gpuAda: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, xs } = inputs as { dy: TensorInfo; xs: TensorInfo };
  const a = attrs as unknown as AdaAttrs;
  const [N, T, D] = dy.shape as [number, number, number];
  const layout = gradRowLayout(D)!;
  const S = Math.max(1, Math.min(Math.ceil(PARTIAL_WORKGROUPS / N), Math.ceil(T / MIN_ROWS)));
  const per = Math.ceil(T / S);
  const slices = Math.ceil(T / per);
  const partial = new ModGradPartialProgram(a.kind, N, D, slices, layout);
  const P = runProgram(backend, partial, [dy, xs], partial.programUniforms(T, D, per, a.eps));
  const J = a.kind === 'norm' ? 2 : 1;
  const rows = new ModGradRowsProgram(N, a.K, D, J, layout.vec);
  const i32 = (v: number) => ({ type: 'int32' as const, data: [v] });
  const out = runProgram(backend, rows, [P], [i32(a.K), i32(D / layout.vec), i32(slices), i32(N), i32(a.row0), i32(a.row1)]);
  disposeIntermediate(backend, P);
  return out;
};

/** out = dy · ada[n, gateIdx] (the gradient of gatedAdd in m), one elementwise pass. */
function gatedMulSpec(D: number): ElementwiseSpec {
  return {
    name: 'gated_mul',
    inputs: ['dy', 'ada'],
    gathered: ['ada'],
    uniforms: 'TD : i32, D : i32, K : i32, gateIdx : i32,',
    vec4: D % 4 === 0,
    code: `
fn elementwise(e : i32, g : T) -> T {
  let n = e / uniforms.TD;
  let d = e - (e / uniforms.D) * uniforms.D;
  return g * ada[((n * uniforms.K + uniforms.gateIdx) * uniforms.D + d) / VEC];
}`,
  };
}

const gpuGatedMul: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, ada } = inputs as { dy: TensorInfo; ada: TensorInfo };
  const [, T, D] = dy.shape as [number, number, number];
  const { gateIdx } = attrs as unknown as { gateIdx: number };
  const i32 = (v: number) => ({ type: 'int32' as const, data: [v] });
  return runProgram(
    backend,
    new ElementwiseProgram(gatedMulSpec(D), dy.shape),
    [dy, ada],
    [i32(T * D), i32(D), i32(ada.shape[1]!), i32(gateIdx)],
  );
};

const kernels: KernelConfig[] = [
  { kernelName: ADA_NORM_DX, backendName: 'webgpu', kernelFunc: gpuDx },
  { kernelName: MOD_GRAD_ADA, backendName: 'webgpu', kernelFunc: gpuAda },
  { kernelName: GATED_MUL, backendName: 'webgpu', kernelFunc: gpuGatedMul },
];

/** Whether the fused gradients run here: webgpu, with rows of D features that fit one workgroup. */
export function fusedModGrad(D: number): boolean {
  return tf.getBackend() === 'webgpu' && gradRowLayout(D) != null;
}

/** dx of adaNorm (x, dy `[N, T, D]`, ada `[N, K, D]`). */
export function adaNormDx(x: Tensor, dy: Tensor, ada: Tensor, scaleIdx: number, eps: number): Tensor {
  registerKernelsOnce(kernels);
  return tf.engine().runKernel(ADA_NORM_DX, { x, dy, ada }, { scaleIdx, eps } as unknown as tf.NamedAttrMap) as Tensor;
}

/**
 * The `[N, K, D]` gradient of ada: for `norm`, Σ_T dy in row `row0` (shift) and Σ_T dy·x̂ in row
 * `row1` (scale), x̂ the LayerNorm of `xs`; for `gate`, Σ_T dy·xs in row `row0`; zeros elsewhere.
 */
export function modGradAda(kind: 'norm' | 'gate', dy: Tensor, xs: Tensor, K: number, row0: number, row1 = -1, eps = 0): Tensor {
  registerKernelsOnce(kernels);
  const attrs: AdaAttrs = { kind, K, row0, row1, eps };
  return tf.engine().runKernel(MOD_GRAD_ADA, { dy, xs }, attrs as unknown as tf.NamedAttrMap) as Tensor;
}

/** dy · ada[:, gateIdx] broadcast over T. */
export function gatedMul(dy: Tensor, ada: Tensor, gateIdx: number): Tensor {
  registerKernelsOnce(kernels);
  return tf.engine().runKernel(GATED_MUL, { dy, ada }, { gateIdx } as unknown as tf.NamedAttrMap) as Tensor;
}
