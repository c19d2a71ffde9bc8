/**
 * `attention`'s kernels on the cpu and wasm backends, made of the backend's own kernels: per (batch,
 * head) and block of query rows, S = (q·scale) kᵀ → softmax → P v, each matrix product a batch-1
 * `BatchMatMul` without transposes (XNNPACK's fast path on wasm, on every thread). Scores exist for
 * one block of at most `SCORE_BLOCK` elements at a time, so memory stays O(L·Dh) plus one block. The
 * backward recomputes P the same way (FlashAttention-2's dS = P ∘ (dP − D), D = rowsum(dO ∘ O)).
 *
 * Same semantics as the plain loops in attention-loops.ts (the reference): a masked key is ignored,
 * and a batch entry whose keys are all masked outputs zeros and gets zero gradients.
 */
import { HostOps, wasmBuild } from '@t2md/core';
import type { DataType, KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';
import { LSE_EMPTY } from './attention-webgpu.js';

/** What the grouped forward uses of tfjs's wasm backend: a bool mask on its heap. */
interface WasmHeap {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object): boolean;
}

/** Most scores (query rows × keys) held at once: 1M floats, 4 MiB. */
export const SCORE_BLOCK = 1 << 20;

interface Dims {
  B: number;
  H: number;
  Lq: number;
  Lk: number;
  Dh: number;
}

const dimsOf = (q: TensorInfo, k: TensorInfo): Dims => {
  const [B, H, Lq, Dh] = q.shape as [number, number, number, number];
  return { B, H, Lq, Lk: k.shape[2]!, Dh };
};

/**
 * Per batch entry: the additive key bias `[1, 1, Lk]` (0 kept, −∞ masked; undefined without a mask)
 * and whether any key is kept.
 */
function keyBiases(ops: HostOps, mask: TensorInfo | undefined, B: number, Lk: number): { bias?: TensorInfo; any: boolean }[] {
  if (mask == null) return Array.from({ length: B }, () => ({ any: true }));
  const keep = Uint8Array.from(ops.data(mask)); // copied: the biases below allocate
  return Array.from({ length: B }, (_, b) => {
    const row = keep.subarray(b * Lk, (b + 1) * Lk);
    const bias = Float32Array.from(row, (m) => (m === 0 ? Number.NEGATIVE_INFINITY : 0));
    return { bias: ops.tensor([1, 1, Lk], bias), any: row.some((m) => m !== 0) };
  });
}

/**
 * Most keys of all heads together (H·Lk) for which the threaded wasm forward takes a batch entry's heads
 * in one pair of products (`stackedHeads`). Below it, e.g. cross-attention to a 16-token caption, the
 * per-head products are so small that waking XNNPACK's threads for each costs more than their
 * multiply-adds (on a 2-core CPU shared with other work, 94–98 ms against 196–272 for the shapes
 * models' cross-attention); the stacked products do H times the multiply-adds, so on one thread, where
 * a call costs little, the per-head products stay faster (28–33 ms against 23–30).
 */
export const STACKED_KEYS = 128;

/** Query-row blocks [r0, r0 + rows) of at most `block` scores each (at least one row). */
function* rowBlocks(Lq: number, Lk: number, block: number): Generator<[number, number]> {
  const R = Math.max(1, Math.floor(block / Math.max(1, Lk)));
  for (let r0 = 0; r0 < Lq; r0 += R) yield [r0, Math.min(R, Lq - r0)];
}

/** Softmax probabilities of one block of logits, with the additive mask bias when there is one. */
function probabilities(ops: HostOps, s: TensorInfo, bias: TensorInfo | undefined): { s: TensorInfo; p: TensorInfo } {
  const logits = bias == null ? s : ops.call('Add', { a: s, b: bias });
  if (logits !== s) ops.free(s);
  return { s: logits, p: ops.call('Softmax', { logits }, { dim: logits.shape.length - 1 }) }; // wasm's kernel wants a non-negative dim
}

/** The head (b, h) of `[B, H, L, D]` as `[1, L, D]` (a copy). */
function head(ops: HostOps, x: TensorInfo, b: number, h: number): TensorInfo {
  return headRows(ops, x, b, h, 0, x.shape[2]!);
}

/** Rows [r0, r0 + rows) of the head (b, h) of `[B, H, L, D]` as `[1, rows, D]` (a copy). */
function headRows(ops: HostOps, x: TensorInfo, b: number, h: number, r0: number, rows: number): TensorInfo {
  const D = x.shape[3]!;
  const part = ops.slice(x, [b, h, r0, 0], [1, 1, rows, D]);
  const out = ops.reshape(part, [1, rows, D]); // shares part's data, which lives on through it
  ops.free(part);
  return out;
}

/** `[1, n, m]` → `[1, m, n]`. */
const swap = (ops: HostOps, x: TensorInfo) => ops.transpose(x, [0, 2, 1]);

/**
 * Forward: out `[B, H, Lq, Dh]` and the per-row log-sum-exp `[B, H, Lq]` (LSE_EMPTY for rows with no
 * key), taken as max(s) − log(max(p)) from the block's softmax (max(p) ≥ 1/Lk, so no cancellation).
 * `stack`: on wasm, few keys' heads in stacked products (default: when XNNPACK runs on several threads).
 * `withLse` false: the per-head products skip the row maxima and leave the log-sum-exp NaN (the host
 * backward never reads it); the stacked products take it from rows they read anyway.
 */
export function attentionForwardHost(
  backend: KernelBackend,
  q: TensorInfo,
  k: TensorInfo,
  v: TensorInfo,
  mask: TensorInfo | undefined,
  scale: number,
  block = SCORE_BLOCK,
  stack?: boolean,
  withLse = true,
): [TensorInfo, TensorInfo] {
  const { B, H, Lq, Lk, Dh } = dimsOf(q, k);
  const ops = new HostOps(backend);
  try {
    // wasm, few keys (cross-attention to a caption): entries with the same keys, values and mask run
    // as one (cpu keeps its per-entry rounding, which the trainer's tests pin)
    if (ops.kind === 'wasm' && B > 1 && H * Lk <= STACKED_KEYS) {
      const groups = sameKeyGroups(ops, k, v, mask, B, Lk);
      if (groups.length < B) return groupedForward(ops, groups, { q, k, v, mask }, [scale, block, stack, withLse]);
    }
    const out = ops.keep(ops.tensor([B, H, Lq, Dh]));
    const lse = new Float32Array(B * H * Lq).fill(withLse ? LSE_EMPTY : Number.NaN);
    const biases = keyBiases(ops, mask, B, Lk);
    const qs = ops.call('Multiply', { a: q, b: ops.tensor([], Float32Array.of(scale)) }); // [B, H, Lq, Dh]
    // (threaded wasm only: the cpu backend has no threads to wake, and its rounding is pinned by the trainer's tests)
    const stacked = ops.kind === 'wasm' && (stack ?? (wasmBuild()?.threads ?? 1) > 1);
    if (stacked && H > 1 && H * Lk <= STACKED_KEYS && H * Lq * H * Lk <= block) {
      for (let b = 0; b < B; b++) {
        if (biases[b]!.any) stackedHeads(ops, { qs, k, v, mask, out, lse }, b);
      }
      return [out, ops.keep(ops.tensor([B, H, Lq], lse))];
    }
    const kT = ops.transpose(k, [0, 1, 3, 2]); // [B, H, Dh, Lk]
    for (let b = 0; b < B; b++) {
      if (!biases[b]!.any) continue; // nothing to attend to: zeros
      for (let h = 0; h < H; h++) {
        const kh = head(ops, kT, b, h); // [1, Dh, Lk]
        const vh = head(ops, v, b, h); // [1, Lk, Dh]
        for (const [r0, rows] of rowBlocks(Lq, Lk, block)) {
          const qc = headRows(ops, qs, b, h, r0, rows); // [1, rows, Dh]
          const { s, p } = probabilities(ops, ops.matMul(qc, kh), biases[b]!.bias); // [1, rows, Lk]
          const o = ops.matMul(p, vh); // [1, rows, Dh]
          const row0 = (b * H + h) * Lq + r0;
          if (withLse) {
            const sMax = ops.call('Max', { x: s }, { reductionIndices: [2], keepDims: false });
            const pMax = ops.call('Max', { x: p }, { reductionIndices: [2], keepDims: false });
            const [sm, pm] = [ops.values(sMax), ops.values(pMax)];
            for (let i = 0; i < rows; i++) lse[row0 + i] = sm[i]! - Math.log(pm[i]!);
            ops.free(sMax, pMax);
          }
          ops.values(out).set(ops.values(o), row0 * Dh);
          ops.free(qc, s, p, o);
        }
        ops.free(kh, vh);
      }
    }
    return [out, ops.keep(ops.tensor([B, H, Lq], lse))];
  } finally {
    ops.dispose();
  }
}

/**
 * Batch entries whose keys, values and key mask are the same bits, in groups (first entry first).
 * In a guided sampling batch of one prompt that is two groups: the images' captioned rows and their
 * unconditional rows. Exported for the kernel's test only (not from the package).
 */
export function sameKeyGroups(ops: HostOps, k: TensorInfo, v: TensorInfo, mask: TensorInfo | undefined, B: number, Lk: number): number[][] {
  const bits = (x: TensorInfo) => {
    const f = ops.values(x);
    return new Uint32Array(f.buffer, f.byteOffset, f.length);
  };
  const [kb, vb] = [bits(k), bits(v)];
  const keep = mask == null ? undefined : ops.data(mask);
  const n = kb.length / B;
  const same = (a: number, b: number) => {
    for (let i = 0; i < n; i++) if (kb[a * n + i] !== kb[b * n + i] || vb[a * n + i] !== vb[b * n + i]) return false;
    if (keep) for (let j = 0; j < Lk; j++) if ((keep[a * Lk + j] !== 0) !== (keep[b * Lk + j] !== 0)) return false;
    return true;
  };
  const groups: number[][] = [];
  for (let b = 0; b < B; b++) {
    const g = groups.find((e) => same(e[0]!, b));
    if (g) g.push(b);
    else groups.push([b]);
  }
  return groups;
}

/**
 * The forward of batch entries grouped by `sameKeyGroups`: each group's queries stacked along Lq as
 * one entry `[1, H, m·Lq, Dh]` with the group's keys, values and mask, run by `attentionForwardHost`,
 * and its rows put back. The few-keys products are so small that a call's set-up outweighs its
 * multiply-adds: a guided batch of 16 images makes 2 entries of 16 stacked rows instead of 32.
 */
function groupedForward(
  ops: HostOps,
  groups: number[][],
  t: { q: TensorInfo; k: TensorInfo; v: TensorInfo; mask: TensorInfo | undefined },
  [scale, block, stack, withLse]: [number, number, boolean | undefined, boolean],
): [TensorInfo, TensorInfo] {
  const { B, H, Lq, Lk, Dh } = dimsOf(t.q, t.k);
  const be = ops.backend as unknown as WasmHeap;
  const out = ops.keep(ops.empty([B, H, Lq, Dh])); // every row written below
  const lse = new Float32Array(B * H * Lq);
  const run = Lq * Dh; // one head of one entry
  for (const g of groups) {
    const m = g.length;
    const qg = ops.empty([1, H, m * Lq, Dh]);
    const [kg, vg] = [ops.slice(t.k, [g[0]!, 0, 0, 0], [1, H, Lk, Dh]), ops.slice(t.v, [g[0]!, 0, 0, 0], [1, H, Lk, Dh])];
    const mg = t.mask == null ? undefined : be.makeOutput([1, Lk], 'bool');
    let res: [TensorInfo, TensorInfo] | undefined;
    try {
      if (mg) (be.typedArrayFromHeap(mg) as Uint8Array).set(Uint8Array.from(ops.data(t.mask!)).subarray(g[0]! * Lk, (g[0]! + 1) * Lk));
      {
        const [qv, gv] = [ops.values(t.q), ops.values(qg)];
        const copy = ops.copier(qv, gv);
        for (let h = 0; h < H; h++) for (const [i, b] of g.entries()) copy((b * H + h) * run, (h * m + i) * run, run);
      }
      res = attentionForwardHost(ops.backend, qg, kg, vg, mg, scale, block, stack, withLse);
      const [og, lg] = res;
      const [ov, outv, lv] = [ops.values(og), ops.values(out), ops.values(lg)];
      const copy = ops.copier(ov, outv);
      for (let h = 0; h < H; h++) {
        for (const [i, b] of g.entries()) {
          copy((h * m + i) * run, (b * H + h) * run, run);
          lse.set(lv.subarray((h * m + i) * Lq, (h * m + i + 1) * Lq), (b * H + h) * Lq);
        }
      }
    } finally {
      for (const r of res ?? []) be.disposeData(r.dataId); // also when a copy above threw
      if (mg) be.disposeData(mg.dataId);
      ops.free(qg, kg, vg);
    }
  }
  return [out, ops.keep(ops.tensor([B, H, Lq], lse))];
}

/**
 * All heads of batch entry b in two products: with the heads' queries stacked in rows, Q `[H·Lq, Dh]`,
 * and their keys side by side, K `[Dh, H·Lk]`, S = Q K holds every head's scores against every head's
 * keys, of which each row keeps its own head's block (plus the mask's −∞) for softmax `[H·Lq, Lk]`.
 * Those probabilities, put back into their blocks of an otherwise zero `[H·Lq, H·Lk]`, times V
 * `[H·Lk, Dh]` (the heads' values stacked) give each head's output in out's own layout `[H, Lq, Dh]`;
 * the zeros add nothing to the sums. The log-sum-exp comes from the same rows in JavaScript.
 */
function stackedHeads(
  ops: HostOps,
  t: { qs: TensorInfo; k: TensorInfo; v: TensorInfo; mask: TensorInfo | undefined; out: TensorInfo; lse: Float32Array },
  b: number,
): void {
  const { H, Lq, Lk, Dh } = dimsOf(t.qs, t.k);
  const [R, C] = [H * Lq, H * Lk];
  const entry = (x: TensorInfo, L: number) => {
    const part = ops.slice(x, [b, 0, 0, 0], [1, H, L, Dh]);
    const out = ops.reshape(part, [1, H * L, Dh]); // shares part's data, which lives on through it
    ops.free(part);
    return out;
  };
  const [qb, vb] = [entry(t.qs, Lq), entry(t.v, Lk)]; // [1, H·Lq, Dh], [1, H·Lk, Dh]
  const kb = ops.empty([1, Dh, C]);
  {
    const [kv, kd] = [ops.values(t.k), ops.values(kb)];
    for (let h = 0; h < H; h++) {
      for (let j = 0; j < Lk; j++) {
        const from = ((b * H + h) * Lk + j) * Dh;
        for (let d = 0; d < Dh; d++) kd[d * C + h * Lk + j] = kv[from + d]!;
      }
    }
  }
  const S = ops.matMul(qb, kb); // [1, H·Lq, H·Lk]
  const logits = ops.empty([1, R, Lk]);
  {
    const keep = t.mask == null ? undefined : ops.data(t.mask);
    const [sv, lv] = [ops.values(S), ops.values(logits)];
    for (let r = 0; r < R; r++) {
      const from = r * C + Math.floor(r / Lq) * Lk; // the row's own head's block
      for (let j = 0; j < Lk; j++) lv[r * Lk + j] = keep == null || keep[b * Lk + j] !== 0 ? sv[from + j]! : Number.NEGATIVE_INFINITY;
    }
  }
  const p = ops.call('Softmax', { logits }, { dim: 2 }); // [1, H·Lq, Lk]
  const Pb = ops.tensor([1, R, C]); // zeros, each row's probabilities in its head's block
  {
    const [lv, pv, pb] = [ops.values(logits), ops.values(p), ops.values(Pb)];
    for (let r = 0; r < R; r++) {
      let [sMax, pMax] = [Number.NEGATIVE_INFINITY, 0];
      for (let j = 0; j < Lk; j++) {
        sMax = Math.max(sMax, lv[r * Lk + j]!);
        pMax = Math.max(pMax, pv[r * Lk + j]!);
      }
      t.lse[b * R + r] = Math.fround(sMax) - Math.log(Math.fround(pMax));
      pb.set(pv.subarray(r * Lk, (r + 1) * Lk), r * C + Math.floor(r / Lq) * Lk);
    }
  }
  const o = ops.matMul(Pb, vb); // [1, H·Lq, Dh]
  ops.values(t.out).set(ops.values(o), b * R * Dh);
  ops.free(qb, vb, kb, S, logits, p, Pb, o);
}

/** Backward: dq, dk, dv (shapes of q, k, v) given dy `[B, H, Lq, Dh]` and the forward's out. */
export function attentionBackwardHost(
  backend: KernelBackend,
  q: TensorInfo,
  k: TensorInfo,
  v: TensorInfo,
  mask: TensorInfo | undefined,
  out: TensorInfo,
  dy: TensorInfo,
  scale: number,
  block = SCORE_BLOCK,
): [TensorInfo, TensorInfo, TensorInfo] {
  const { B, H, Lq, Lk, Dh } = dimsOf(q, k);
  const ops = new HostOps(backend);
  try {
    const [dq, dk, dv] = ops.keep([ops.tensor(q.shape), ops.tensor(k.shape), ops.tensor(v.shape)]);
    const biases = keyBiases(ops, mask, B, Lk);
    const scalar = ops.tensor([], Float32Array.of(scale));
    const qs = ops.call('Multiply', { a: q, b: scalar }); // [B, H, Lq, Dh]
    const kT = ops.transpose(k, [0, 1, 3, 2]); // [B, H, Dh, Lk]
    const vT = ops.transpose(v, [0, 1, 3, 2]); // [B, H, Dh, Lk]
    const ks = ops.call('Multiply', { a: k, b: scalar }); // dq = dS (k·scale)
    const D = ops.call('Sum', { x: ops.call('Multiply', { a: dy, b: out }) }, { axis: [3], keepDims: true }); // [B, H, Lq, 1]
    for (let b = 0; b < B; b++) {
      if (!biases[b]!.any) continue; // zero gradients
      for (let h = 0; h < H; h++) {
        const [kh, vTh, ksh] = [head(ops, kT, b, h), head(ops, vT, b, h), head(ops, ks, b, h)];
        const kv0 = (b * H + h) * Lk * Dh;
        for (const [r0, rows] of rowBlocks(Lq, Lk, block)) {
          const qc = headRows(ops, qs, b, h, r0, rows); // [1, rows, Dh]
          const dyc = headRows(ops, dy, b, h, r0, rows);
          const { s, p } = probabilities(ops, ops.matMul(qc, kh), biases[b]!.bias); // [1, rows, Lk]
          const dp = ops.matMul(dyc, vTh); // [1, rows, Lk]
          const Dc = headRows(ops, D, b, h, r0, rows); // [1, rows, 1]
          const dpD = ops.call('Sub', { a: dp, b: Dc });
          const ds = ops.call('Multiply', { a: p, b: dpD }); // [1, rows, Lk]
          const dqc = ops.matMul(ds, ksh); // [1, rows, Dh]
          const [pT, dsT] = [swap(ops, p), swap(ops, ds)]; // [1, Lk, rows]
          const dvc = ops.matMul(pT, dyc); // [1, Lk, Dh]
          const dkc = ops.matMul(dsT, qc); // [1, Lk, Dh]
          ops.values(dq).set(ops.values(dqc), ((b * H + h) * Lq + r0) * Dh);
          for (const [acc, part] of [
            [dv, dvc],
            [dk, dkc],
          ] as const) {
            const [to, from] = [ops.values(acc), ops.values(part)];
            for (let i = 0; i < Lk * Dh; i++) to[kv0 + i] += from[i]!;
          }
          ops.free(qc, dyc, s, p, dp, Dc, dpD, ds, dqc, pT, dsT, dvc, dkc);
        }
        ops.free(kh, vTh, ksh);
      }
    }
    return [dq, dk, dv];
  } finally {
    ops.dispose();
  }
}
