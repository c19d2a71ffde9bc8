import { assertInt, assertOneOf, check, fmtShape, gemm, linear, type Rng } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { type BothDirections, bothDirections, fromBothDirections, toBothDirections, toBothDirectionsSplit } from '../scan-order/gather.js';
import { SCAN_ORDERS, type ScanOrder, scanPermutation } from '../scan-order/scan-order.js';
import { type Mamba2Config, mamba2Dims } from './config.js';
import { gatedRmsNormSharedGate } from './gated-norm.js';
import {
  checkMixerInput,
  type LateGateProjections,
  Mamba2Mixer,
  mamba2Core,
  mamba2InProj,
  mamba2InProjLateGate,
  mamba2OutWeight,
  mamba2Scan,
  recordingGradients,
  releaser,
} from './mamba2.js';

/**
 * The conv, scan and gated norm of both scan directions, one direction after the other: the same
 * per-sequence work as one batch of 2B sequences (the same bits), at about half its peak, since a
 * direction's intermediates (the conv output, the chunk states of the SSD kernel, the ungated scan
 * output) are freed before the next direction's exist; the gated norm runs once both are back in grid
 * order, with z shared by the two directions. x, B and C come from in_proj apart
 * (`mamba2InProjLateGate`) and are gathered and convolved apart: no `[B, L, convDim]` tensor exists, a
 * size nothing else in the model uses, which tfjs's pool would otherwise keep three of (1 GiB at
 * 32,400 tokens of T2MD-XL/2). z is projected only once both scans are done: during them it would be
 * one more `[B, L, dInner]` buffer at the mixer's peak (285 MiB there; issue 23). Outside a gradient
 * tape: `free` disposes.
 * @param p in_proj's x `[B, L, dInner]`, B and C `[B, L, G·N]` and dt `[B, L, H]` in grid order (freed
 *   here), and `gate()`, which makes z `[B, L, dInner]`
 * @returns `[B, L, 2·dInner]` in grid order, forward channels then reversed (as `fromBothDirections`)
 */
function directionsInTurn(
  w: Record<string, tf.Tensor>,
  p: LateGateProjections,
  t: BothDirections,
  c: Required<Mamba2Config>,
  free: (...ts: tf.Tensor[]) => void,
): tf.Tensor {
  const { L } = t;
  const B = p.dt.shape[0]!;
  const { dInner } = mamba2Dims(c);
  // direction d's tokens: gatherIn's d-th half, the rows toBothDirections puts in entry 2b + d; on the
  // second direction each grid-order input is freed as soon as it is gathered
  const scan = (x: tf.Tensor, d: number) => {
    const r = tf.tidy(() => tf.gather(x, tf.tensor1d(t.gatherIn.subarray(d * L, (d + 1) * L), 'int32'), 1)); // [B, L, ·]
    if (d === 1) free(x);
    return r;
  };
  const ys: tf.Tensor[] = [];
  for (const d of [0, 1]) {
    const q = { xBC: { x: scan(p.xBC.x, d), B: scan(p.xBC.B, d), C: scan(p.xBC.C, d) }, dt: scan(p.dt, d) };
    ys.push(tf.tidy(() => mamba2Scan(w, q, c, free))); // [B, L, dInner], ungated
  }
  // [B, 2L, dInner] is [2B, L, dInner] with entries 2b and 2b + 1 the two directions of sequence b
  const both = tf.tidy(() => tf.reshape(tf.concat(ys, 1), [2 * B, L, dInner]));
  free(...ys);
  const raw = tf.tidy(() => fromBothDirections(both, t)); // [B, L, 2·dInner]
  free(both);
  const z = tf.tidy(p.gate); // [B, L, dInner]
  // the gated norm is per token: in grid order each token's gate z serves its two directions, so z is
  // never gathered (no [B, L, dInner] copy per direction), and the same bits as gating each direction
  const cat = tf.tidy(() => gatedRmsNormSharedGate(raw, z, dInner / c.ngroups, c.normEps)); // [B, L, 2·dInner]
  free(raw, z);
  return cat;
}

/**
 * Outside a gradient tape, a call of at least this many tokens (B·L) per model channel (D) makes the
 * fused output weight of the concat merge for itself and frees it after use instead of keeping it
 * (`BidirectionalMamba.mergedOutWeight`): 18,432 tokens and more for T2MD-XL/2 (D = 1152).
 */
export const FUSED_PER_CALL_TOKENS = 16;

/** A bidirectional Mamba-2 mixer over a 2D token grid. */
export interface BidirectionalMambaConfig extends Mamba2Config {
  /** The scan order: `'WM'` width-first (row-major) or `'HM'` height-first (column-major). */
  order: ScanOrder;
  /**
   * How the forward and the reversed scan are merged: `'concat'` (default) -> Linear(2D -> D), or
   * `'sum'`. The paper does not say which (arXiv 2506.18999 mentions a linear layer).
   */
  merge?: 'concat' | 'sum';
  /** Scan every other line backwards (a boustrophedon order; default false). */
  snake?: boolean;
}

const MERGES = ['concat', 'sum'] as const;

/**
 * T2MD's token mixer: one Mamba-2 mixer whose weights scan the grid in `order` and again in the
 * reversed order; both outputs are put back in grid order and merged. in_proj runs once on the grid
 * (it is per token and both directions share it), its outputs are gathered into both scan orders, and
 * the conv, scan and norm run on the two directions as one batch of 2B sequences; one gather brings
 * them back into grid order, laid out as the concat the merge reads, and one linear (out_proj and the
 * merge folded together) maps it to D. (Inference on WebGPU runs the two directions in turn instead,
 * at about half the peak: `directionsInTurn`.) The same weights give the same outputs as running the whole
 * mixer on both directions and merging (`bidirectionalReference` in `@t2md/ssm/testing`).
 *
 * Weights: the Mamba-2 names (shared by both directions) and, for `'concat'`, `merge.weight` `[D, 2D]`
 * (columns: forward then backward) and `merge.bias` `[D]` (PyTorch Linear layout and default init).
 */
export class BidirectionalMamba {
  readonly config: Required<BidirectionalMambaConfig>;
  /** The shared Mamba-2 mixer (its weights are this module's, under the same names). */
  readonly mixer: Mamba2Mixer;
  private readonly mergeVars: Record<string, tf.Variable>;
  private readonly scans = new Map<string, BothDirections>(); // index tables per grid
  /** The fused output weight and the weights (data ids) it was made from, outside a gradient tape. */
  private merged: { key: object[]; w: tf.Tensor } | null = null;
  private disposed = false;

  constructor(config: BidirectionalMambaConfig, rng: Rng) {
    check(config != null && typeof config === 'object', 'config must be an object such as {dModel: 256, order: "HM"}.');
    assertOneOf('config.order', config.order, SCAN_ORDERS);
    const merge = config.merge ?? 'concat';
    assertOneOf('config.merge', merge, MERGES);
    this.mixer = new Mamba2Mixer(config, rng);
    this.config = { ...this.mixer.config, order: config.order, merge, snake: config.snake === true };
    this.mergeVars = {};
    if (merge === 'concat') {
      const D = this.config.dModel;
      const bound = 1 / Math.sqrt(2 * D); // PyTorch Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
      const w = rng.uniforms(D * 2 * D, -bound, bound);
      const b = rng.uniforms(D, -bound, bound);
      this.mergeVars['merge.weight'] = tf.tidy(() => tf.variable(tf.tensor(w, [D, 2 * D], 'float32'), true));
      this.mergeVars['merge.bias'] = tf.tidy(() => tf.variable(tf.tensor(b, [D], 'float32'), true));
    }
  }

  /** The Mamba-2 weights (shared by both directions) and, for `'concat'`, `merge.weight` and `merge.bias`. */
  weights(): Record<string, tf.Variable> {
    check(!this.disposed, 'this BidirectionalMamba was disposed; create a new one.');
    return { ...this.mixer.weights(), ...this.mergeVars };
  }

  /**
   * @param x `[B, L, D]` tokens of a row-major `[H, W]` grid (index h * W + w)
   * @param grid `[H, W]` with H * W = L
   * @returns `[B, L, D]` in grid order
   */
  apply(x: tf.Tensor, grid: [number, number]): tf.Tensor {
    check(!this.disposed, 'this BidirectionalMamba was disposed; create a new one.');
    checkMixerInput('x', x, this.config.dModel);
    check(Array.isArray(grid) && grid.length === 2, () => `grid must be [H, W], got ${JSON.stringify(grid)}.`);
    assertInt('grid[0] (H)', grid[0], 1);
    assertInt('grid[1] (W)', grid[1], 1);
    const [H, W] = grid;
    check(
      H * W === x.shape[1],
      () =>
        `grid [${H}, ${W}] has ${H * W} tokens but x has L = ${x.shape[1]} (shape ${fmtShape(x.shape)}); pass the token grid with H * W = L.`,
    );
    const tables = this.tables(H, W);
    const w = this.weights();
    return tf.tidy(() => {
      const [B, L] = x.shape as number[];
      const c = this.mixer.config;
      const { dInner } = mamba2Dims(c);
      // in_proj is per token and both directions share its weights: project the B sequences once in
      // grid order, then gather the projections into both scan orders (2B sequences: entry 2b scans
      // sequence b in order, 2b + 1 in the reversed order), where the conv, scan and norm run.
      // Outside a gradient tape each activation is freed as soon as the next one exists (a tidy would
      // keep all of them to its end): the peak is two stages, not the whole mixer.
      const free = releaser();
      if (!recordingGradients() && tf.getBackend() === 'webgpu') {
        // Inference on webgpu: the two directions in turn, so that the first one's conv output, chunk
        // states and scan output are freed before the second one's exist (issue 23).
        const cat = directionsInTurn(w, mamba2InProjLateGate(w, x, c), tables, c, free); // [B, L, 2·dInner]
        return this.merge(w, cat, B, L, free);
      }
      const p = mamba2InProj(w, x, c);
      // (each stage in its own tidy, so that the tensor it returns is the only one holding its data)
      const both = (t: tf.Tensor) => {
        const r = tf.tidy(() => toBothDirections(t, tables)); // [2B, L, ·]
        free(t);
        return r;
      };
      let cat: tf.Tensor; // [B, L, 2·dInner], grid order: forward channels, then reversed
      if (!recordingGradients()) {
        // Inference on cpu and wasm (webgpu's returned above): the gather cuts xBC into x, B and C itself (the conv is per channel,
        // so no split copies it again), and z is never gathered: the gated norm is per token, so it runs
        // after the gather back, each token's gate shared by its two directions. Neither path has a
        // gradient, hence the tape check.
        const GN = c.ngroups * c.dState;
        const [xp, Bp, Cp] = toBothDirectionsSplit(p.xBC, tables, [dInner, GN, GN]);
        free(p.xBC);
        const ys = mamba2Scan(w, { xBC: { x: xp!, B: Bp!, C: Cp! }, dt: both(p.dt) }, c, free); // [2B, L, dInner], ungated
        const raw = tf.tidy(() => fromBothDirections(ys, tables));
        free(ys);
        cat = tf.tidy(() => gatedRmsNormSharedGate(raw, p.z, dInner / c.ngroups, c.normEps));
        free(raw, p.z);
      } else {
        const q = { z: both(p.z), xBC: both(p.xBC), dt: both(p.dt) };
        const yn = mamba2Core(w, q, c, free); // [2B, L, dInner]
        cat = tf.tidy(() => fromBothDirections(yn, tables));
        free(yn);
      }
      return this.merge(w, cat, B, L, free);
    });
  }

  /**
   * The merge of both directions' gated outputs and out_proj, as one linear map to D.
   * @param cat `[B, L, 2·dInner]` in grid order, forward channels then reversed (freed here)
   * @returns `[B, L, D]`
   */
  private merge(w: Record<string, tf.Tensor>, cat: tf.Tensor, B: number, L: number, free: (...ts: tf.Tensor[]) => void): tf.Tensor {
    const { dInner } = mamba2Dims(this.mixer.config);
    let out: tf.Tensor;
    if (this.config.merge === 'sum') {
      // out_proj(y_f) + out_proj(y_b) = out_proj(y_f + y_b): one projection
      const sum = tf.tidy(() => tf.sum(tf.reshape(cat, [B, L, 2, dInner]), 2)); // [B, L, dInner]
      free(cat);
      out = linear(tf.reshape(sum, [B * L, dInner]), mamba2OutWeight(w));
      free(sum);
    } else {
      // merge(concat(out_proj(y_f), out_proj(y_b))) is two linear maps in a row: one linear with
      // W' = [W_m1·W_out | W_m2·W_out] over concat(y_f, y_b) replaces three (see mergedOutWeight).
      const fused = this.mergedOutWeight(w, B * L);
      out = linear(tf.reshape(cat, [B * L, 2 * dInner]), fused.w, w['merge.bias']);
      free(cat);
      if (!fused.kept) free(fused.w);
    }
    return tf.reshape(out, [B, L, this.config.dModel]);
  }

  /**
   * W' `[D, 2·dInner]` = [W_m1·W_out | W_m2·W_out], W_out = out_proj.weight ⊙ norm.weight and W_m1,
   * W_m2 the forward and backward halves of merge.weight: two small GEMMs (2·D·D·dInner multiply-adds).
   * Made on every call under a gradient tape (so its gradient reaches the three weights). Outside one:
   * - a call of fewer than `FUSED_PER_CALL_TOKENS`·D tokens (B·L) keeps it until one of the weights is
   *   assigned anew (sampling calls the mixer with the same weights at every step), since making it
   *   would cost as much as the GEMM it saves;
   * - a longer call makes it and frees it after its linear (`kept: false`), and frees a kept one. Kept,
   *   the 24 mixers' W' of T2MD-XL/2 hold 486 MiB for the whole forward, at its peak too (an SA block's
   *   MLP, issue 23); made per call, it costs 2·D·D·dInner against the B·L·D·2·dInner of the linear it
   *   feeds, i.e. D/(B·L) of it (≤ 1/16 here; 3.6% at 32,400 tokens, and 0.8% of the block's GEMMs),
   *   and it exists only while its linear runs. The same ops either way: the same bits.
   */
  private mergedOutWeight(w: Record<string, tf.Tensor>, tokens: number): { w: tf.Tensor; kept: boolean } {
    const make = () =>
      tf.tidy(() => {
        const Wout = mamba2OutWeight(w); // [D, dInner]
        const [m1, m2] = tf.split(w['merge.weight'], 2, 1); // [D, D] each: its gradient is one concat
        return tf.concat([gemm(m1!, Wout), gemm(m2!, Wout)], 1); // [D, 2·dInner]
      });
    if (recordingGradients()) return { w: make(), kept: false };
    if (tokens >= FUSED_PER_CALL_TOKENS * this.config.dModel) {
      this.merged?.w.dispose();
      this.merged = null;
      return { w: make(), kept: false };
    }
    const key = ['merge.weight', 'out_proj.weight', 'norm.weight'].map((n) => w[n]!.dataId);
    const hit = this.merged != null && !this.merged.w.isDisposed && this.merged.key.every((id, i) => id === key[i]);
    if (!hit) {
      this.merged?.w.dispose();
      this.merged = { key, w: tf.keep(make()) };
    }
    return { w: this.merged!.w, kept: true };
  }

  /** Frees the fused output weight kept for short calls (`mergedOutWeight`); the next one makes it again. */
  releaseCaches(): void {
    this.merged?.w.dispose();
    this.merged = null;
  }

  /** Frees every weight; the module cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.releaseCaches();
    this.mixer.dispose();
    for (const v of Object.values(this.mergeVars)) v.dispose();
  }

  private tables(H: number, W: number): BothDirections {
    const key = `${H}x${W}`;
    let t = this.scans.get(key);
    if (t == null) {
      const { perm, inv } = scanPermutation(this.config.order, H, W, { snake: this.config.snake });
      t = bothDirections(perm, inv);
      this.scans.set(key, t);
    }
    return t;
  }
}
