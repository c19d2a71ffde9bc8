import * as tf from '@tensorflow/tfjs-core';

/**
 * A PyTorch-layout linear layer: x `[N, in]`, w `[out, in]`, b `[out]` → `[N, out]`, as one fused
 * matmul + bias with transposeB (no copy of w). On wasm the bias is added separately:
 * tfjs-backend-wasm 4.22's `_FusedMatMul` with `transposeB` and a bias returns wrong values (seen
 * here: relative error 0.86 against cpu, while the same call without the bias, or without transposeB,
 * is exact).
 */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  if (b == null) return tf.matMul(x, w, false, true);
  if (tf.getBackend() === 'wasm') return tf.add(tf.matMul(x, w, false, true), b);
  return tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, transposeB: true, bias: b });
}
