import type { TensorInfo } from '@tensorflow/tfjs-core';

/**
 * The fields tfjs-backend-webgpu reads from a program (its `WebGPUProgram` interface), written out so
 * packages need no deep import of the backend: the backend module must load only after
 * `navigator.gpu` exists (see initBackend).
 */
export interface WebGPUProgramSpec {
  outputShape: number[];
  /** Everything baked into the WGSL text must appear here: pipelines are cached by this key. */
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames: string[];
  /** Extra uniforms, declared as WGSL struct fields, e.g. `'L : i32, scale : f32,'`. */
  uniforms?: string;
  /** Adds `uniforms.size` (the output's element count). */
  size?: boolean;
  atomic?: boolean;
  getUserCode(): string;
}

/** A uniform value passed with a program run. */
export interface ProgramUniform {
  type: 'int32' | 'float32' | 'uint32';
  data: number[];
}

interface WebGPULike {
  runWebGPUProgram(
    program: WebGPUProgramSpec,
    inputs: TensorInfo[],
    dtype: 'float32' | 'int32',
    uniforms?: ProgramUniform[],
    output?: TensorInfo,
  ): TensorInfo;
  makeTensorInfo(shape: number[], dtype: 'float32' | 'int32'): TensorInfo;
  disposeData(dataId: object): boolean;
}

/** Runs a program on the webgpu backend (tfjs reshapes an oversized dispatch to fit device limits). */
export function runProgram(
  backend: object,
  program: WebGPUProgramSpec,
  inputs: TensorInfo[],
  uniforms?: ProgramUniform[],
  dtype: 'float32' | 'int32' = 'float32',
  output?: TensorInfo,
): TensorInfo {
  return (backend as unknown as WebGPULike).runWebGPUProgram(program, inputs, dtype, uniforms, output);
}

/**
 * A new, unwritten float32 tensor for programs to fill through `runProgram(..., output)`: several
 * programs can then each write their own part of one result (instead of a concat of their outputs).
 */
export function emptyOutput(backend: object, shape: number[]): TensorInfo {
  return (backend as unknown as WebGPULike).makeTensorInfo(shape, 'float32');
}

/** Frees intermediate tensors made inside a kernel. */
export function disposeIntermediate(backend: object, ...infos: TensorInfo[]): void {
  for (const t of infos) (backend as unknown as WebGPULike).disposeData(t.dataId);
}

/** A flat 1-D dispatch over `n` threads in workgroups of `wg`. */
export function flatDispatch(n: number, wg: number): [number, number, number] {
  return [Math.ceil(n / wg), 1, 1];
}
