import type { Tensor } from '@tensorflow/tfjs-core';

/**
 * Inputs of the Mamba-2 SSD scan (letters: B batch, L seqlen, H nheads, P headdim, G ngroups, N dstate).
 * Head h reads group floor(h / (H / G)) of B and C.
 */
export interface SsdScanInputs {
  /** [B, L, H, P] */
  x: Tensor;
  /** [B, L, H], raw step sizes (before dtBias, softplus and dtLimit) */
  dt: Tensor;
  /** [H], usually negative (-exp(A_log)) */
  A: Tensor;
  /** [B, L, G, N] */
  B: Tensor;
  /** [B, L, G, N] */
  C: Tensor;
  /** [H] or [H, P]: skip connection y += D x */
  D?: Tensor;
  /** [B, L, H, P]: gate, y *= silu(z) */
  z?: Tensor;
  /** [H], added to dt before softplus */
  dtBias?: Tensor;
  /** [B, H, P, N] */
  initialStates?: Tensor;
}

export interface SsdScanOptions {
  /** Tokens per chunk of the chunked algorithm (default 256, as mamba_ssm's Mamba2). Any seqlen works. */
  chunkSize?: number;
  /** Apply softplus to dt + dtBias (default false, as mamba_chunk_scan_combined). */
  dtSoftplus?: boolean;
  /**
   * Clamp of the processed dt, [min, max]; max null means +infinity. Default [0, null], which (as in
   * mamba_ssm) means no clamp at all.
   */
  dtLimit?: readonly [number, number | null];
  /** Also return the state after the last token (default false). */
  returnFinalStates?: boolean;
  /**
   * Which WebGPU forward runs (a benchmark knob; cpu and wasm ignore it, and the backward is the same
   * for both): 'chunked' (the default, or `T2MD_SSD_VARIANT` in Node) passes the chunk states in a pass
   * of its own; 'segmented' folds that pass into the chunk-state GEMM (./webgpu-segmented.ts).
   */
  variant?: SsdVariant;
  /** Chunks per segment of the 'segmented' variant; 0 or absent picks it from the shape. */
  segmentChunks?: number;
  /**
   * Outputs per thread of the WebGPU GEMM passes (a benchmark knob; cpu and wasm ignore it, and every
   * tile gives the same sums in the same order): '4x4' (the default, or `T2MD_SSD_GEMM_TILE` in Node)
   * is the original 256-thread kernel; the others are `SSD_GEMM_TILES`' register-blocked variants.
   */
  gemmTile?: SsdGemmTile;
}

/** The WebGPU forwards of the scan (see SsdScanOptions.variant). */
export const SSD_VARIANTS = ['chunked', 'segmented'] as const;
export type SsdVariant = (typeof SSD_VARIANTS)[number];

/**
 * Micro-tiles of the WebGPU GEMM passes, rows × columns of the 64×64 output tile that one thread owns
 * (webgpu-programs.ts `GemmProgram`): '4x4' 256 threads (the original kernel), '4x4p' the same with
 * padded workgroup-memory rows, '8x4' and '4x8' 128 threads, '8x8' 64 threads, all three padded.
 */
export const SSD_GEMM_TILES = ['4x4', '4x4p', '8x4', '4x8', '8x8'] as const;
export type SsdGemmTile = (typeof SSD_GEMM_TILES)[number];

export interface SsdScanResult {
  /** [B, L, H, P] */
  y: Tensor;
  /** [B, H, P, N], when returnFinalStates */
  finalStates?: Tensor;
}

/** Kernel attributes: everything the kernels need besides the tensors. */
export interface SsdAttrs {
  chunkSize: number;
  dtSoftplus: boolean;
  /** Whether to clamp at all (false for the default limit [0, +inf], as mamba_ssm). */
  dtClamp: boolean;
  dtMin: number;
  /** +Infinity when unbounded. */
  dtMax: number;
  hasD: boolean;
  dPerChannel: boolean;
  hasZ: boolean;
  hasBias: boolean;
  hasInit: boolean;
  /**
   * Whether the kernel has the finalStates output. Without it the kernel has one output: tfjs builds
   * a zero dy on the CPU for every output nobody used and uploads it on each backward.
   */
  returnFinal: boolean;
  variant: SsdVariant;
  /** 0: picked from the shape. */
  segmentChunks: number;
  gemmTile: SsdGemmTile;
}

/** Sizes shared by all kernels. */
export interface SsdDims {
  batch: number;
  seqlen: number;
  nheads: number;
  headdim: number;
  ngroups: number;
  dstate: number;
}

/** Kernel input names, in the order the kernels receive them (absent optional inputs are [1] placeholders). */
export const SSD_INPUTS = ['x', 'dt', 'A', 'B', 'C', 'D', 'z', 'dtBias', 'initialStates'] as const;
export type SsdInputName = (typeof SSD_INPUTS)[number];

export function dimsOf(xShape: readonly number[], bShape: readonly number[]): SsdDims {
  return { batch: xShape[0], seqlen: xShape[1], nheads: xShape[2], headdim: xShape[3], ngroups: bShape[2], dstate: bShape[3] };
}
