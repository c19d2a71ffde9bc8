import { assertFloat, check, fmtShape, hostSlice, InputError, registerKernelsOnce } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { SCORE_BLOCK } from './attention-host.js';
import { ATTENTION, ATTENTION_GRAD, type AttentionAttrs, attentionKernels, type PackedHeads } from './attention-kernels.js';
import { type AttentionTiles, resolveAttentionTiles } from './attention-webgpu.js';

/** Options of `attention`. */
export interface AttentionOptions {
  /** Multiplies the logits q·k; defaults to 1 / sqrt(Dh). */
  scale?: number;
  /** `[B, Lk]` bool: false drops that key for every head and query of its batch entry. */
  keyMask?: tf.Tensor;
  /**
   * Tile sizes of the webgpu kernels over `ATTENTION_TILES` (benchmarks; tests that cross tile edges
   * on small shapes): the numbers do not change, only the speed. Checked on every backend.
   */
  tiles?: Partial<AttentionTiles>;
  /**
   * cpu and wasm: most scores (query rows × keys) held at once, default `SCORE_BLOCK` (2^20); longer
   * rows are computed a block of queries at a time. The numbers do not change, only memory and speed.
   */
  scoreBlock?: number;
}

/**
 * Registers the attention kernels (cpu, wasm, webgpu); idempotent. The forward kernel has no registered
 * gradient: `attention` differentiates it through `tf.customGrad`, which runs the backward kernel.
 */
export function registerAttentionKernels(): void {
  registerKernelsOnce(attentionKernels);
}

/**
 * Memory-efficient scaled dot-product attention, softmax(q kᵀ · scale + mask) v, as fused kernels:
 * on webgpu an online softmax over key tiles (FlashAttention-2), so nothing of size Lq x Lk is ever
 * stored (memory O(L · Dh)); on cpu and wasm matrix products on the backend's own kernels (XNNPACK on
 * wasm), one head and block of at most `scoreBlock` scores at a time. The backward recomputes the
 * probabilities. Differentiable in q, k and v.
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
  const tiles = resolveAttentionTiles(options.tiles);
  const scoreBlock = options.scoreBlock ?? SCORE_BLOCK;
  registerAttentionKernels();
  const hasMask = options.keyMask != null;
  // The kernels always take a mask input; unmasked runs pass a [1, 1] placeholder that no kernel reads.
  const keyMask = options.keyMask ?? tf.zeros([1, 1], 'bool');
  const attrs = { scale, hasMask, tiles, scoreBlock, hostLse: false } satisfies AttentionAttrs as unknown as tf.NamedAttrMap;
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
  const { scoreBlock } = options;
  if (scoreBlock !== undefined && !(Number.isSafeInteger(scoreBlock) && scoreBlock >= 1)) {
    throw new InputError(`scoreBlock must be a positive integer, got ${String(scoreBlock)}; leave it out for ${SCORE_BLOCK}.`);
  }
  return { B, H, Lq, Lk, Dh };
}

/** Options of `headsAttention`. */
export interface HeadsAttentionOptions {
  /** B: sequences in the batch (the matrices hold B·L rows, sequence-major). */
  batch: number;
  heads: number;
  headDim: number;
  /** First column of head 0's query in q (default 0), key and value in kv. */
  qOffset?: number;
  kOffset: number;
  vOffset: number;
  /** `[B, Lk]` bool: false drops that key. */
  keyMask?: tf.Tensor;
  /** Defaults to 1 / sqrt(headDim). */
  scale?: number;
  /** Tile sizes of the webgpu kernels, as `attention`'s option. */
  tiles?: Partial<AttentionTiles>;
}

/**
 * Multi-head attention on heads laid out in the columns of token matrices, as a fused projection
 * makes them: no head split or merge (on WebGPU the kernels read and write these layouts directly,
 * saving the four transposes per attention, and their backward's, that `[B, H, L, Dh]` tensors need).
 * Elsewhere it is `attention` between reshapes, with the same numbers.
 * @param q `[B·Lq, Cq]`: head h's query at columns `qOffset + h·Dh ..`
 * @param kv `[B·Lk, Ckv]` (may be q itself, e.g. a fused qkv): keys at `kOffset + h·Dh ..`, values at
 *   `vOffset + h·Dh ..`
 * @returns `[B·Lq, H·Dh]`, head h at columns `h·Dh ..` (ready for the output projection)
 */
export function headsAttention(q: tf.Tensor, kv: tf.Tensor, o: HeadsAttentionOptions): tf.Tensor {
  const { batch: B, heads: H, headDim: Dh, qOffset = 0, kOffset, vOffset } = o;
  assertFloat('q', q);
  assertFloat('kv', kv);
  check(
    q.rank === 2 && kv.rank === 2,
    () => `q and kv must be 2-D token matrices [B·L, C], got ${fmtShape(q.shape)} and ${fmtShape(kv.shape)}.`,
  );
  check(
    Number.isInteger(B) && B >= 1 && q.shape[0]! % B === 0 && kv.shape[0]! % B === 0,
    () => `batch (${B}) must divide the rows of q ${fmtShape(q.shape)} and kv ${fmtShape(kv.shape)}.`,
  );
  const D = H * Dh;
  const blocks: [string, tf.Tensor, number][] = [
    ['qOffset', q, qOffset],
    ['kOffset', kv, kOffset],
    ['vOffset', kv, vOffset],
  ];
  for (const [name, t, off] of blocks) {
    check(
      Number.isInteger(off) && off >= 0 && off + D <= t.shape[1]!,
      () => `${name} ${off} + heads·headDim ${D} must fit the ${t.shape[1]} columns of ${fmtShape(t.shape)}.`,
    );
  }
  const Lq = q.shape[0]! / B;
  const Lk = kv.shape[0]! / B;
  const scale = o.scale ?? 1 / Math.sqrt(Dh);
  const tiles = resolveAttentionTiles(o.tiles);
  if (tf.getBackend() !== 'webgpu') {
    return tf.tidy(() => {
      const heads = (t: tf.Tensor, off: number, L: number) =>
        tf.transpose(tf.reshape(hostSlice(t, [0, off], [-1, D]), [B, L, H, Dh]), [0, 2, 1, 3]); // [B, H, L, Dh]
      const out = attention(heads(q, qOffset, Lq), heads(kv, kOffset, Lk), heads(kv, vOffset, Lk), {
        scale,
        tiles,
        ...(o.keyMask ? { keyMask: o.keyMask } : {}),
      });
      return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [B * Lq, D]); // [B·Lq, D]
    });
  }
  const m = o.keyMask;
  check(
    m == null || (m instanceof tf.Tensor && m.dtype === 'bool' && m.rank === 2 && m.shape[0] === B && m.shape[1] === Lk),
    () => `keyMask must be a bool tensor of shape [B, Lk] = [${B}, ${Lk}], got ${m == null ? '' : `${m.dtype} ${fmtShape(m.shape)}`}.`,
  );
  check(Number.isFinite(scale), () => `scale must be a finite number, got ${String(o.scale)}; leave it out for 1/sqrt(headDim).`);
  registerAttentionKernels();
  const hasMask = o.keyMask != null;
  const keyMask = o.keyMask ?? tf.zeros([1, 1], 'bool');
  const cq = q.shape[1]!;
  const ckv = kv.shape[1]!;
  const packed: PackedHeads = {
    B,
    H,
    Lq,
    Lk,
    Dh,
    q: [Lq * cq, Dh, cq, qOffset],
    k: [Lk * ckv, Dh, ckv, kOffset],
    v: [Lk * ckv, Dh, ckv, vOffset],
  };
  const same = q === kv;
  // The gradient kernels can write straight into the inputs' layout when the blocks fill their matrix
  // (a fused qkv, a k-then-v projection): no concat of the three gradients.
  const fills = (C: number, offs: number[]) => offs.length * D === C && [...offs].sort((a, b) => a - b).every((off, i) => off === i * D);
  const gradInto = same && fills(cq, [qOffset, kOffset, vOffset]) ? 'qkv' : !same && fills(ckv, [kOffset, vOffset]) ? 'kv' : undefined;
  const attrs = {
    scale,
    hasMask,
    packed,
    tiles,
    scoreBlock: SCORE_BLOCK,
    ...(gradInto ? { gradInto } : {}),
  } satisfies AttentionAttrs as unknown as tf.NamedAttrMap;
  // The gradient of a packed input: its used column blocks, in column order, zeros between them.
  const assemble = (rows: number, cols: number, parts: [number, tf.Tensor][]): tf.Tensor => {
    const sorted = [...parts].sort((a, b) => a[0] - b[0]);
    const pieces: tf.Tensor[] = [];
    let at = 0;
    for (const [off, g] of sorted) {
      if (off > at) pieces.push(tf.zeros([rows, off - at]));
      pieces.push(g);
      at = off + D;
    }
    if (at < cols) pieces.push(tf.zeros([rows, cols - at]));
    return pieces.length === 1 ? pieces[0]! : tf.concat(pieces, 1);
  };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const qi = args[0] as tf.Tensor;
    const kvi = same ? qi : (args[1] as tf.Tensor);
    const save = args[same ? 1 : 2] as tf.GradSaveFunc;
    const [out, lse] = tf.engine().runKernel(ATTENTION, { q: qi, k: kvi, v: kvi, keyMask }, attrs) as tf.Tensor[];
    save([qi, kvi, keyMask, out, lse]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sq, skv, sMask, sOut, sLse] = saved;
        const inputs = { q: sq, k: skv, v: skv, keyMask: sMask, out: sOut, lse: sLse, dy };
        const grads = tf.engine().runKernel(ATTENTION_GRAD, inputs, attrs) as tf.Tensor[];
        if (gradInto === 'qkv') return [grads[0]!];
        if (gradInto === 'kv') return [assemble(B * Lq, cq, [[qOffset, grads[0]!]]), grads[1]!];
        const [dq, dk, dv] = grads as [tf.Tensor, tf.Tensor, tf.Tensor];
        const qkvParts: [number, tf.Tensor][] = [
          [qOffset, dq],
          [kOffset, dk],
          [vOffset, dv],
        ];
        if (same) return [assemble(B * Lq, cq, qkvParts)];
        return [assemble(B * Lq, cq, [[qOffset, dq]]), assemble(B * Lk, ckv, qkvParts.slice(1))];
      },
    };
  });
  const out = same ? op(q) : op(q, kv);
  if (!hasMask) keyMask.dispose();
  return out;
}
