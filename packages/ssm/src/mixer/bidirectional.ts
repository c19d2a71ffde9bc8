import { assertInt, assertOneOf, check, fmtShape, linear, type Rng } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { type BothDirections, bothDirections, fromBothDirections, toBothDirections } from '../scan-order/gather.js';
import { SCAN_ORDERS, type ScanOrder, scanPermutation } from '../scan-order/scan-order.js';
import type { Mamba2Config } from './config.js';
import { checkMixerInput, Mamba2Mixer, mamba2Forward } from './mamba2.js';

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
 * reversed order; both outputs are put back in grid order and merged. The two directions run as one
 * batch of 2B sequences through the mixer (one set of dispatches instead of two), reordered by one
 * gather on the way in and one on the way out (which also lays out the concat for the merge).
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
      const D = this.config.dModel;
      // Both directions as one batch of 2B sequences (one set of dispatches): entry 2b scans sequence b
      // in order, entry 2b + 1 in the reversed order; the same weights serve both.
      const xs = toBothDirections(x, tables); // [2B, L, D]
      const ys = mamba2Forward(w, xs, this.mixer.config); // [2B, L, D]
      const cat = fromBothDirections(ys, tables); // [B, L, 2D], grid order: forward channels, then reversed
      if (this.config.merge === 'sum') return tf.sum(tf.reshape(cat, [B, L, 2, D]), 2); // [B, L, D]
      const out = linear(tf.reshape(cat, [B * L, 2 * D]), w['merge.weight'], w['merge.bias']);
      return tf.reshape(out, [B, L, D]);
    });
  }

  /** Frees every weight; the module cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
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
