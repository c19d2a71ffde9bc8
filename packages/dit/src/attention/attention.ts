import { assertFloat, check, fmtShape, InputError, registerKernelsOnce } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { ATTENTION, ATTENTION_GRAD, type AttentionAttrs, attentionKernels } from './attention-kernels.js';

/** Options of `attention`. */
export interface AttentionOptions {
  /** Multiplies the logits q·k; defaults to 1 / sqrt(Dh). */
  scale?: number;
  /** `[B, Lk]` bool: false drops that key for every head and query of its batch entry. */
  keyMask?: tf.Tensor;
}

/**
 * Registers the attention kernels (cpu, wasm, webgpu); idempotent. The forward kernel has no registered
 * gradient: `attention` differentiates it through `tf.customGrad`, which runs the backward kernel.
 */
export function registerAttentionKernels(): void {
  registerKernelsOnce(attentionKernels);
}

/**
 * Memory-efficient scaled dot-product attention, softmax(q kᵀ · scale + mask) v, as fused kernels
 * on every backend: an online softmax over key tiles (FlashAttention-2), so nothing of size Lq x Lk
 * is ever stored (memory O(L · Dh)); the backward recomputes the probabilities from a saved per-row
 * log-sum-exp. Differentiable in q, k and v.
 *
 * A query row whose keys are all masked (possible only with a `keyMask` that is false everywhere for
 * a batch entry) outputs zeros, and its gradients are zero: there is nothing to attend to, and zeros
 * keep such rows from turning into NaN or a uniform average of ignored keys.
 *
 * @param q `[B, H, Lq, Dh]` float32
 * @param k `[B, H, Lk, Dh]` float32
 * @param v `[B, H, Lk, Dh]` float32
 * @returns `[B, H, Lq, Dh]`
 */
export function attention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, options: AttentionOptions = {}): tf.Tensor {
  const { Dh } = checkAttentionInputs(q, k, v, options);
  const scale = options.scale ?? 1 / Math.sqrt(Dh);
  registerAttentionKernels();
  const hasMask = options.keyMask != null;
  // The kernels always take a mask input; unmasked runs pass a [1, 1] placeholder that no kernel reads.
  const keyMask = options.keyMask ?? tf.zeros([1, 1], 'bool');
  const attrs = { scale, hasMask } satisfies AttentionAttrs as unknown as tf.NamedAttrMap;
  // A custom gradient, so the tape sees a single output. All three gradients come from one backward
  // kernel, run eagerly. With the log-sum-exp as a second output nobody uses, tfjs would build a zero dy of [B, H, Lq] on
  // the CPU and upload it on every backward.
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qi, ki, vi] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [out, lse] = tf.engine().runKernel(ATTENTION, { q: qi, k: ki, v: vi, keyMask }, attrs) as tf.Tensor[];
    save([qi, ki, vi, keyMask, out, lse]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sq, sk, sv, sMask, sOut, sLse] = saved;
        const inputs = { q: sq, k: sk, v: sv, keyMask: sMask, out: sOut, lse: sLse, dy };
        return tf.engine().runKernel(ATTENTION_GRAD, inputs, attrs) as tf.Tensor[];
      },
    };
  });
  const out = op(q, k, v);
  if (!hasMask) keyMask.dispose();
  return out;
}

/** Validates the inputs of `attention` (and `attentionRef`), returning the sizes. */
export function checkAttentionInputs(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, options: AttentionOptions) {
  assertFloat('q', q);
  assertFloat('k', k);
  assertFloat('v', v);
  check(q.rank === 4, () => `q must have rank 4 [B, H, Lq, Dh], got shape ${fmtShape(q.shape)}.`);
  const [B, H, Lq, Dh] = q.shape as [number, number, number, number];
  check(
    k.rank === 4 && k.shape[0] === B && k.shape[1] === H && k.shape[3] === Dh,
    () => `k must have shape [B, H, Lk, Dh] = [${B}, ${H}, Lk, ${Dh}] to match q ${fmtShape(q.shape)}, got ${fmtShape(k.shape)}.`,
  );
  const Lk = k.shape[2] as number;
  check(
    v.rank === 4 && v.shape.every((s, i) => s === k.shape[i]),
    () => `v must have the shape of k ${fmtShape(k.shape)} ([B, H, Lk, Dh]), got ${fmtShape(v.shape)}.`,
  );
  const { keyMask, scale } = options;
  if (keyMask != null) {
    check(keyMask instanceof tf.Tensor, () => `keyMask must be a bool tensor of shape [B, Lk] = [${B}, ${Lk}], got ${typeof keyMask}.`);
    check(
      keyMask.dtype === 'bool',
      () =>
        `keyMask must be bool (true = attend), got ${keyMask.dtype} of shape ${fmtShape(keyMask.shape)}; convert it with tf.cast(keyMask, 'bool').`,
    );
    check(
      keyMask.rank === 2 && keyMask.shape[0] === B && keyMask.shape[1] === Lk,
      () =>
        `keyMask must have shape [B, Lk] = [${B}, ${Lk}] for q ${fmtShape(q.shape)} and k ${fmtShape(k.shape)}, got ${fmtShape(keyMask.shape)}.`,
    );
  }
  if (scale !== undefined && !(typeof scale === 'number' && Number.isFinite(scale))) {
    throw new InputError(`scale must be a finite number, got ${String(scale)}; leave it out for 1/sqrt(Dh).`);
  }
  return { B, H, Lq, Lk, Dh };
}
