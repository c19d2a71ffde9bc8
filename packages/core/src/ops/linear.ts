import * as tf from '@tensorflow/tfjs-core';
import { gemm, resolveMatmulVariant } from './matmul/matmul.js';

/**
 * A PyTorch-layout linear layer: x `[N, in]`, w `[out, in]`, b `[out]` → `[N, out]`, as one fused
 * matmul + bias with transposeB (no copy of w). On webgpu it is our tiled GEMM (`gemm` with variant
 * auto: the tiling picked by shape; `gemm` with variant 'tfjs' is tfjs's fused matMul), which also
 * runs its gradient (dx = dy·w, dw = dyᵀ·x, db = Σ dy). On wasm the weight is transposed first:
 * tfjs-backend-wasm 4.22's `_FusedMatMul` with `transposeB` and a bias returns wrong values (seen
 * here: relative error 0.86 against cpu, while the same call without the bias, or without transposeB,
 * is exact), and its matmul with a transposed operand is ~10× slower than transposing first (seen
 * here: 73 ms against 6.7 ms for [256, 256] · [1024, 256]ᵀ). The bias then goes into that fused
 * matmul without transposeB (XNNPACK adds it in the same pass: one threaded call fewer than a
 * separate add, ~15% faster at [8192, 128] · [128, 512] on a 2-core CPU).
 */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  if (tf.getBackend() === 'wasm') {
    // tidy: the transposed copy of w was left alive here before (the same numbers, minus a leak).
    return tf.tidy(() => {
      const wT = tf.transpose(w);
      return b == null ? tf.matMul(x, wT) : tf.fused.matMul({ a: x as tf.Tensor2D, b: wT as tf.Tensor2D, bias: b });
    });
  }
  if (resolveMatmulVariant(x.shape[0] ?? 0, w.shape[0] ?? 0) !== 'tfjs') return gemm(x, w, { transposeB: true, bias: b });
  if (b == null) return tf.matMul(x, w, false, true);
  return tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, transposeB: true, bias: b });
}
