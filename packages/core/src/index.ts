export type { AdapterList, AdapterSummary } from './adapters.js';
export { listAdapters } from './adapters.js';
export { assertFloat, assertInt, assertOneOf, assertRank, assertShape, check, fmtShape } from './assert.js';
export type { BackendInfo, BackendName, BackendReport, InitBackendOptions } from './backend.js';
export { backendReport, currentBackend, dawnFlagsInUse, initBackend, takeWebGPUErrors, webgpuDetails } from './backend.js';
export { InputError, isInputError } from './errors.js';
export { gradientsRegistered } from './gradients.js';
export type { ElementwiseConfig, ElementwiseLayout } from './kernel/elementwise-config.js';
export { ELEMENTWISE_DEFAULTS, layoutOf, resolveElementwiseLayout } from './kernel/elementwise-config.js';
export type { ElementwiseSpec } from './kernel/elementwise-program.js';
export { ElementwiseProgram, vectorPrelude } from './kernel/elementwise-program.js';
export { registerKernelsOnce } from './kernel/register.js';
export type { TypedOutput } from './kernel/typed-array-kernel.js';
export { makeOutput, readInput, typedArrayKernel } from './kernel/typed-array-kernel.js';
export type { ProgramUniform, WebGPUProgramSpec } from './kernel/webgpu-program.js';
export { disposeIntermediate, emptyOutput, flatDispatch, runProgram } from './kernel/webgpu-program.js';
export { GAUSSIAN_NOISE, gaussianNoise, gaussianNoiseValues } from './ops/gaussian-noise.js';
export { geluTanh, registerCoreKernels } from './ops/gelu-tanh.js';
export { GELU_TANH, GELU_TANH_GRAD } from './ops/gelu-tanh-kernels.js';
export { linear } from './ops/linear.js';
export type { GemmOptions, MatMulVariant } from './ops/matmul/matmul.js';
export {
  autoTile,
  gemm,
  gemmRef,
  matmulUnrollFromEnv,
  matmulVariantFromEnv,
  registerMatmulKernels,
  resolveMatmulVariant,
} from './ops/matmul/matmul.js';
export type { MatMulTileName } from './ops/matmul/matmul-webgpu.js';
export type { RngState } from './rng.js';
export { Rng } from './rng.js';
export type { SafetensorsDtype, SaveOptions } from './safetensors.js';
export { loadSafetensors, saveSafetensors } from './safetensors.js';
export { releaseFreeBuffers } from './webgpu-backend.js';
