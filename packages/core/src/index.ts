export type { AdapterList, AdapterSummary } from './adapters.js';
export { listAdapters } from './adapters.js';
export { assertFloat, assertInt, assertOneOf, assertRank, assertShape, check, fmtShape } from './assert.js';
export type { BackendInfo, BackendName, BackendReport, InitBackendOptions } from './backend.js';
export {
  backendReport,
  currentBackend,
  dawnFlagsInUse,
  initBackend,
  quietWebGPUErrors,
  takeWebGPUErrors,
  webgpuDetails,
  webgpuDeviceLost,
} from './backend.js';
export type { DeviceMemory } from './device-memory.js';
export { deviceMemory, releaseFreeBuffers, resetDevicePeak, webgpuIdle } from './device-memory.js';
export { InputError, isInputError } from './errors.js';
export { gradientsRegistered } from './gradients.js';
export type { ElementwiseConfig, ElementwiseLayout } from './kernel/elementwise-config.js';
export { ELEMENTWISE_DEFAULTS, layoutOf, resolveElementwiseLayout } from './kernel/elementwise-config.js';
export type { ElementwiseSpec } from './kernel/elementwise-program.js';
export { ElementwiseProgram, vectorPrelude } from './kernel/elementwise-program.js';
export { HostOps, hostBackendName } from './kernel/host-ops.js';
export { onEveryBackend, registerKernelsOnce } from './kernel/register.js';
export type { TypedOutput } from './kernel/typed-array-kernel.js';
export { makeOutput, readInput, typedArrayKernel } from './kernel/typed-array-kernel.js';
export type { ProgramUniform, WebGPUProgramSpec } from './kernel/webgpu-program.js';
export { disposeIntermediate, emptyOutput, flatDispatch, runProgram } from './kernel/webgpu-program.js';
export { GAUSSIAN_NOISE, gaussianNoise, gaussianNoiseValues } from './ops/gaussian-noise.js';
export { geluTanh, registerCoreKernels } from './ops/gelu-tanh.js';
export { GELU_TANH, GELU_TANH_GRAD } from './ops/gelu-tanh-kernels.js';
export { HOST_SLICE, HOST_SPLIT, hostSlice, hostSplit } from './ops/host-slice.js';
export { linear } from './ops/linear.js';
export type { GemmOptions, MatMulUnroll, MatMulVariant } from './ops/matmul/matmul.js';
export { autoTile, GEMM_DEFAULTS, gemm, gemmRef, registerMatmulKernels, resolveMatmulVariant } from './ops/matmul/matmul.js';
export type { MatMulTileName } from './ops/matmul/matmul-webgpu.js';
export { recomputed, tapeIsRecording, withoutGradient } from './recompute.js';
export type { RngState } from './rng.js';
export { Rng } from './rng.js';
export type { SafetensorsDtype, SaveOptions } from './safetensors.js';
export { loadSafetensors, saveSafetensors } from './safetensors.js';
export type { WasmBuildInfo } from './wasm-threads.js';
export { MAX_WASM_THREADS, WASM_MAX_MEMORY, wasmBuild, wasmMemoryBytes } from './wasm-threads.js';
export { DEFERRED_FREE_LIMIT, deferredFreeLimit, POOL_LIMIT, poolLimit, setDeferredFreeLimit, setPoolLimit } from './webgpu-backend.js';
