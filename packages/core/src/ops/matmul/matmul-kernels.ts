import {
  type GradConfig,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  sum,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { disposeIntermediate, runProgram } from '../../kernel/webgpu-program.js';
import { MatMulProgram, type MatMulTileName, SplitKReduceProgram } from './matmul-webgpu.js';

export const T2MD_MATMUL = 'T2mdMatMul';

/** Attributes of `T2mdMatMul`. `tile` picks the WGSL tiling (see MATMUL_TILES). */
export interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
  tile: MatMulTileName;
  /** The variant the caller asked for (`auto` or a tiling): the gradient's GEMMs run it too. */
  variant: 'auto' | MatMulTileName;
  /** k-steps per inner-loop iteration written out (a power of 2; the K-tile, 16, writes all of it). */
  unroll: number;
  /** Layers K is split over (1: none); see `MatMulProgramOptions.splitK`. */
  splitK: number;
}

const gpuMatMul: KernelFunc = ({ inputs, backend, attrs }) => {
  const { a, b, bias } = inputs as { a: TensorInfo; b: TensorInfo; bias?: TensorInfo };
  const { transposeA, transposeB, tile, unroll, splitK } = attrs as unknown as MatMulAttrs;
  const [M, K] = transposeA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const N = transposeB ? b.shape[0]! : b.shape[1]!;
  if (splitK > 1) {
    const parts = runProgram(backend, new MatMulProgram({ M, N, K, transposeA, transposeB, hasBias: false, tile, unroll, splitK }), [a, b]);
    const out = runProgram(backend, new SplitKReduceProgram(splitK, M, N, bias != null), bias != null ? [parts, bias] : [parts]);
    disposeIntermediate(backend, parts);
    return out;
  }
  const program = new MatMulProgram({ M, N, K, transposeA, transposeB, hasBias: bias != null, tile, unroll });
  return runProgram(backend, program, bias != null ? [a, b, bias] : [a, b]);
};

/** Only webgpu: on cpu and wasm the public op never reaches this kernel (it calls tfjs's matMul). */
export const matMulKernels: KernelConfig[] = [{ kernelName: T2MD_MATMUL, backendName: 'webgpu', kernelFunc: gpuMatMul }];

/** The product used by the gradient; set by matmul.ts (the public op), given the forward's variant and unroll. */
type Product = (a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean, o: Pick<MatMulAttrs, 'variant' | 'unroll'>) => Tensor;

/**
 * Gradients of C = op(A)·op(B) + bias, each again one GEMM with the transposes arranged so that no
 * operand is copied: e.g. for `linear` (transposeB) dA = dC·B (NN) and dB = dCᵀ·A (TN); dbias =
 * Σ_rows dC.
 */
export function matMulGrad(product: Product): GradConfig {
  return {
    kernelName: T2MD_MATMUL,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const dc = dy as Tensor;
      const [a, b] = saved as [Tensor, Tensor];
      const { transposeA: tA, transposeB: tB, variant, unroll } = attrs as unknown as MatMulAttrs & NamedAttrMap;
      const o = { variant, unroll };
      const grads: Record<string, () => Tensor> = {
        // A [M, K]: dC·op(B)ᵀ; A [K, M] (tA): (dC·op(B)ᵀ)ᵀ = op(B)·dCᵀ.
        a: () => (tA ? product(b, dc, tB, true, o) : product(dc, b, false, !tB, o)),
        // B [K, N]: op(A)ᵀ·dC; B [N, K] (tB): (op(A)ᵀ·dC)ᵀ = dCᵀ·op(A).
        b: () => (tB ? product(dc, a, true, tA, o) : product(a, dc, !tA, false, o)),
        bias: () => sum(dc, 0),
      };
      return grads;
    },
  };
}
