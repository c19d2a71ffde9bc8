import * as tf from '@tensorflow/tfjs-core';
import { assertFloat, check, fmtShape } from '../../assert.js';
import { registerKernelsOnce } from '../../kernel/register.js';
import { type MatMulAttrs, matMulGrad, matMulKernels, T2MD_MATMUL } from './matmul-kernels.js';
import { MATMUL_TILES, type MatMulTileName } from './matmul-webgpu.js';

/** Which GEMM runs on webgpu: tfjs's own matMul, one of our tilings, or a choice by shape. */
export type MatMulVariant = 'tfjs' | MatMulTileName | 'auto';
const VARIANTS: readonly MatMulVariant[] = ['tfjs', 't128', 't64', 'auto'];

/** k-steps of the inner loop written out in WGSL per iteration (16 = the whole K-tile). */
export type MatMulUnroll = 1 | 2 | 4 | 8 | 16;
const UNROLLS: readonly MatMulUnroll[] = [1, 2, 4, 8, 16];

/** What `gemm` and `linear` run with when no option says otherwise (the bench records these). */
export const GEMM_DEFAULTS: { readonly variant: MatMulVariant; readonly unroll: MatMulUnroll } = { variant: 'auto', unroll: 16 };

export interface GemmOptions {
  transposeA?: boolean;
  transposeB?: boolean;
  /** `[N]`, added to every row. */
  bias?: tf.Tensor;
  /** Layers to split K over on webgpu (default: `autoSplitK`; 1 = never). A split runs the t64 tiling. */
  splitK?: number;
  /**
   * The GEMM on webgpu (default auto, see `autoTile`); elsewhere it is always tfjs's matMul. An A/B
   * knob for benchmarks: the gradient's GEMMs run the same variant.
   */
  variant?: MatMulVariant;
  /**
   * k-steps of the inner loop written out in WGSL (default 16, the whole K-tile): full unrolling
   * removes the loop's index arithmetic (a few integer ops per 64 FMAs, ~5%) but makes the shader ~4×
   * longer. Another benchmark knob, shared with the gradient like `variant`.
   */
  unroll?: MatMulUnroll;
}

/** InputErrors for an unknown variant or unroll, naming the option. */
function checkVariant(variant: unknown): asserts variant is MatMulVariant {
  check(
    (VARIANTS as readonly unknown[]).includes(variant),
    () => `gemm option variant must be one of ${VARIANTS.join(', ')}, got ${JSON.stringify(variant)}; leave it out for the default (auto).`,
  );
}

function checkUnroll(unroll: unknown): asserts unroll is MatMulUnroll {
  check(
    (UNROLLS as readonly unknown[]).includes(unroll),
    () => `gemm option unroll must be one of ${UNROLLS.join(', ')}, got ${JSON.stringify(unroll)}; leave it out for the default (16).`,
  );
}

/**
 * The tiling `auto` picks for C [M, N]: 128×128 tiles once they fill the GPU's ~132 SMs about four
 * times over (so the last, partial wave costs little), else 64×64 tiles (4× the workgroups). Measured
 * on the H100 (2026-11-26, bench/results/2026-11-26-h100.json@887adff, since removed from the tree):
 * t128 reaches 28-33 TFLOP/s on the XL linears at 16384 rows (tfjs: 12-13); at 4096 rows with
 * N = 1152 (288 tiles) t64 and t128 are within 5% of each other; summed over the bench's shapes `auto`
 * ties the best fixed tiling (52.79 against 52.81 ms). E.g. M = 8192, N = 1152: 64·9 = 576 tiles of
 * 128 → t128; M = 2048, N = 1152: 144 → t64.
 */
export function autoTile(M: number, N: number): MatMulTileName {
  const tiles128 = Math.ceil(M / 128) * Math.ceil(N / 128);
  return tiles128 >= 512 ? 't128' : 't64';
}

/** Workgroups a split-K GEMM aims for: a few waves on a large GPU (the H100/H200 have 132 SMs). */
const SPLIT_TARGET_WORKGROUPS = 512;
/** The least K one split layer sums: below it the partial sums cost more than the split gains. */
const SPLIT_MIN_K = 512;

/**
 * Layers to split K over for C [M, N] with this tiling (1: no split): when C has too few tiles to fill
 * the GPU and K is long, e.g. a weight gradient [128, 128] summed over 131,072 rows has 4 tiles of 64×64
 * (a few SMs busy for 5.7 ms on the H200 without a split).
 */
export function autoSplitK(M: number, N: number, K: number, tile: MatMulTileName): number {
  const { BM, BN } = MATMUL_TILES[tile];
  const tiles = Math.ceil(M / BM) * Math.ceil(N / BN);
  return Math.max(1, Math.min(Math.floor(SPLIT_TARGET_WORKGROUPS / tiles), Math.floor(K / SPLIT_MIN_K)));
}

/** The variant that will run for C [M, N] on the current backend when `variant` is asked for. */
export function resolveMatmulVariant(M: number, N: number, variant: MatMulVariant = GEMM_DEFAULTS.variant): 'tfjs' | MatMulTileName {
  checkVariant(variant);
  if (tf.getBackend() !== 'webgpu') return 'tfjs';
  return variant === 'auto' ? autoTile(M, N) : variant;
}

/** Registers `T2mdMatMul` (webgpu) and its gradient (idempotent). */
export function registerMatmulKernels(): void {
  registerKernelsOnce(matMulKernels, [
    matMulGrad((a, b, tA, tB, { variant, unroll }) =>
      gemm(a, b, { transposeA: tA, transposeB: tB, variant, unroll: unroll as MatMulUnroll }),
    ),
  ]);
}

/**
 * C = op(A)·op(B) (+ bias), float32, 2-D. On webgpu our tiled WGSL GEMM (`T2mdMatMul`, tiling by
 * `opts.variant`, default auto), elsewhere (or with variant 'tfjs') tfjs's matMul. Differentiable in
 * a, b, bias.
 * @param a `[M, K]`, or `[K, M]` with transposeA
 * @param b `[K, N]`, or `[N, K]` with transposeB
 * @returns `[M, N]`
 */
export function gemm(a: tf.Tensor, b: tf.Tensor, opts: GemmOptions = {}): tf.Tensor {
  const { transposeA = false, transposeB = false, bias, variant: asked = GEMM_DEFAULTS.variant, unroll = GEMM_DEFAULTS.unroll } = opts;
  const { M, N, K } = checkGemm(a, b, transposeA, transposeB, bias);
  checkUnroll(unroll);
  const variant = resolveMatmulVariant(M, N, asked);
  if (variant === 'tfjs') return gemmRef(a, b, opts);
  registerMatmulKernels();
  const splitK = Math.max(1, Math.floor(opts.splitK ?? autoSplitK(M, N, K, variant)));
  // a split runs 64×64 tiles (see MatMulProgram); the gradient reruns the variant asked for (auto picks by its own shapes)
  const tile = splitK > 1 ? 't64' : variant;
  const attrs: MatMulAttrs = { transposeA, transposeB, tile, variant: asked as 'auto' | MatMulTileName, unroll, splitK };
  const inputs: tf.NamedTensorMap = bias == null ? { a, b } : { a, b, bias };
  return tf.engine().runKernel(T2MD_MATMUL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

/**
 * The reference: tfjs-core's matMul plus the bias. On webgpu one fused matMul (today's `linear`);
 * elsewhere the bias is a separate add (tfjs-backend-wasm 4.22's fused matMul with transposeB and a
 * bias is wrong, see linear.ts).
 */
export function gemmRef(a: tf.Tensor, b: tf.Tensor, opts: GemmOptions = {}): tf.Tensor {
  const { transposeA = false, transposeB = false, bias } = opts;
  if (bias == null) return tf.matMul(a, b, transposeA, transposeB);
  if (tf.getBackend() === 'webgpu') {
    return tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeA, transposeB, bias });
  }
  return tf.tidy(() => tf.add(tf.matMul(a, b, transposeA, transposeB), bias));
}

/** Shape checks at the public boundary; every message names both operands' shapes. */
function checkGemm(a: tf.Tensor, b: tf.Tensor, tA: boolean, tB: boolean, bias?: tf.Tensor): { M: number; N: number; K: number } {
  assertFloat('a', a);
  assertFloat('b', b);
  const both = () => `a ${fmtShape(a.shape)}${tA ? ' (transposed)' : ''} and b ${fmtShape(b.shape)}${tB ? ' (transposed)' : ''}`;
  check(a.rank === 2 && b.rank === 2, () => `gemm needs 2-D a and b, got ${both()}; reshape to [rows, features] first.`);
  const [M, K] = tA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [Kb, N] = tB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  check(K === Kb, () => `gemm's inner dimensions differ (${K} vs ${Kb}) for ${both()}.`);
  if (bias != null) {
    assertFloat('bias', bias);
    check(bias.rank === 1 && bias.shape[0] === N, () => `bias must have shape [${N}] for ${both()}, got ${fmtShape(bias.shape)}.`);
  }
  return { M, N, K };
}
