/**
 * The small pieces of a Mamba-2 mixer around the scan, in tfjs-core ops (each differentiable on every
 * backend): the causal depthwise conv, SiLU, the gated RMSNorm and a bias-free linear layer.
 */
import { linear as linear2d } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';

/** SiLU(x) = x * sigmoid(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/**
 * PyTorch's `Linear` without bias on the last axis: `x @ weight^T`, weight `[out, in]` (PyTorch layout),
 * through core's `linear` (the tiled WGSL GEMM on webgpu, tiling picked by shape).
 * @param x `[..., in]`
 * @returns `[..., out]`
 */
export function linear(x: tf.Tensor, weight: tf.Tensor): tf.Tensor {
  const inF = x.shape[x.rank - 1];
  const x2 = tf.reshape(x, [-1, inF]); // [M, in]
  const y = linear2d(x2, weight); // [M, out]
  return tf.reshape(y, [...x.shape.slice(0, -1), weight.shape[0]]);
}

/**
 * Causal depthwise conv1d over the sequence, as mamba_ssm's `conv1d(xBC.transpose(1, 2))[..., :L]`
 * (PyTorch `Conv1d(groups=C, padding=K-1)` truncated to the first L outputs):
 * `y[b, t, c] = bias[c] + sum_k weight[c, 0, k] * x[b, t + k - (K - 1), c]`, zeros before t = 0.
 * @param x `[B, L, C]`
 * @param weight `[C, 1, K]` (PyTorch layout)
 * @param bias `[C]`
 * @returns `[B, L, C]`
 */
export function causalConv1d(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const [B, L, C] = x.shape as number[];
  const K = weight.shape[2] as number;
  // wasm has no DepthwiseConv2dNativeBackprop* kernels; there the conv is a sum of K shifted slices
  // (same numbers, more ops). Elsewhere it is one depthwiseConv2d over a [B, 1, L + K - 1, C] view.
  if (!depthwiseGradAvailable()) return causalConv1dShifted(x, weight, bias);
  const xp = tf.pad(x, [
    [0, 0],
    [K - 1, 0],
    [0, 0],
  ]); // [B, L+K-1, C]
  const filter = tf.reshape(tf.transpose(tf.reshape(weight, [C, K])), [1, K, C, 1]); // [1, K, C, 1]
  const y = tf.fused.depthwiseConv2d({
    x: tf.reshape(xp, [B, 1, L + K - 1, C]) as tf.Tensor4D,
    filter: filter as tf.Tensor4D,
    strides: 1,
    pad: 'valid',
    bias,
  });
  return tf.reshape(y, [B, L, C]);
}

/** The conv as a sum of K shifted, scaled copies of x (every op has a gradient on every backend). */
export function causalConv1dShifted(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const [B, L, C] = x.shape as number[];
  const K = weight.shape[2] as number;
  const xp = tf.pad(x, [
    [0, 0],
    [K - 1, 0],
    [0, 0],
  ]); // [B, L+K-1, C]
  const w = tf.transpose(tf.reshape(weight, [C, K])); // [K, C]
  let y: tf.Tensor = bias;
  for (let k = 0; k < K; k++) {
    const tap = tf.reshape(tf.slice(w, [k, 0], [1, C]), [C]);
    y = tf.add(y, tf.mul(tf.slice(xp, [0, k, 0], [B, L, C]), tap));
  }
  return y; // [B, L, C]
}

/**
 * `silu(causalConv1d(x, weight, bias))` in tfjs-core ops: the composition the mixer used before the
 * fused `causalConv1dSilu`, kept as its reference.
 * @param x `[B, L, C]`
 * @param weight `[C, 1, K]`
 * @param bias `[C]`
 * @returns `[B, L, C]`
 */
export function causalConv1dSiluRef(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  return silu(causalConv1d(x, weight, bias));
}

function depthwiseGradAvailable(): boolean {
  const b = tf.getBackend();
  return tf.getKernel('DepthwiseConv2dNativeBackpropFilter', b) != null && tf.getKernel('DepthwiseConv2dNativeBackpropInput', b) != null;
}

/**
 * mamba_ssm's `RMSNormGated(norm_before_gate=False)`: gate first, then RMS-normalise each group of
 * `groupSize` channels: `g = y * silu(z)`, `out = g / sqrt(mean(g^2) + eps) * weight`.
 * @param y `[..., dInner]`
 * @param z `[..., dInner]`
 * @param weight `[dInner]`
 */
export function gatedRmsNorm(y: tf.Tensor, z: tf.Tensor, weight: tf.Tensor, groupSize: number, eps: number): tf.Tensor {
  return tf.mul(gatedRmsNormalize(y, z, groupSize, eps), weight);
}

/** `gatedRmsNorm` without the final `* weight` (the mixer folds the weight into out_proj instead). */
export function gatedRmsNormalize(y: tf.Tensor, z: tf.Tensor, groupSize: number, eps: number): tf.Tensor {
  const dInner = y.shape[y.rank - 1];
  const g = tf.reshape(tf.mul(y, silu(z)), [-1, dInner / groupSize, groupSize]); // [M, G, dInner/G]
  const ms = tf.mean(tf.square(g), -1, true); // [M, G, 1]
  return tf.reshape(tf.mul(g, tf.rsqrt(tf.add(ms, eps))), y.shape);
}
