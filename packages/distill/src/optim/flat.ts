/**
 * One flat float32 vector over many named tensors: the layout the optimiser keeps its moments, its EMA
 * shadow and its weight copy in, so a step is a few dozen ops on [P] instead of ~20 per weight (on
 * WebGPU each tfjs op costs ~100 µs of dispatch overhead whatever its size; per weight, the shapes
 * teacher's step would be ~5,000 optimiser ops).
 *
 * Tensor i occupies [offsets[i], offsets[i] + sizes[i]) of the vector, row-major, in the order given.
 */
import * as tf from '@tensorflow/tfjs-core';

export class FlatLayout {
  readonly names: readonly string[];
  readonly shapes: readonly number[][];
  readonly sizes: readonly number[];
  readonly offsets: readonly number[];
  /** P, the vector's length. */
  readonly total: number;

  constructor(shapes: Record<string, readonly number[]>) {
    this.names = Object.keys(shapes);
    this.shapes = this.names.map((n) => [...shapes[n]]);
    this.sizes = this.shapes.map((s) => s.reduce((a, d) => a * d, 1));
    const offsets: number[] = [];
    let total = 0;
    for (const s of this.sizes) {
      offsets.push(total);
      total += s;
    }
    this.offsets = offsets;
    this.total = total;
  }

  /** `[P]`: the named tensors flattened and concatenated in layout order; a name `ts` lacks reads as zeros. */
  flatten(ts: Record<string, tf.Tensor>): tf.Tensor1D {
    return tf.tidy(() => {
      // Rank-1 tensors go in as they are: a Reshape is free on the device but still a tfjs op.
      const parts = this.names.map((n, i) =>
        ts[n] == null ? tf.zeros([this.sizes[i]]) : ts[n].rank === 1 ? ts[n] : tf.reshape(ts[n], [-1]),
      );
      return (parts.length === 1 ? tf.clone(parts[0]) : tf.concat(parts)) as tf.Tensor1D;
    });
  }

  /** The pieces of `flat` `[P]` in their own shapes, by name (new tensors; one SplitV for them all). */
  unflatten(flat: tf.Tensor1D): Record<string, tf.Tensor> {
    return tf.tidy(() => {
      const pieces = this.names.length === 1 ? [tf.clone(flat)] : tf.split(flat, [...this.sizes]);
      return Object.fromEntries(
        this.names.map((n, i) => [n, this.shapes[i].length === 1 ? pieces[i] : tf.reshape(pieces[i], this.shapes[i])]),
      );
    });
  }

  /** `[P]` constant: 1 over the tensors `pick` names, 0 elsewhere. */
  mask(pick: (name: string) => boolean): tf.Tensor1D {
    const m = new Float32Array(this.total);
    for (const [i, n] of this.names.entries()) if (pick(n)) m.fill(1, this.offsets[i], this.offsets[i] + this.sizes[i]);
    return tf.tensor1d(m);
  }
}

/**
 * Where each variable's current value came from: the flat vector it was sliced out of, at which offset,
 * and the value (data id) it was given. Lets `flatVariables` hand back that vector instead of
 * concatenating the weights again while nobody has reassigned them — the optimiser's step and the EMA
 * update that follows both read the new weights without a concat. Weak, so it keeps nothing alive.
 */
const placed = new WeakMap<tf.Variable, { flat: tf.Tensor; offset: number; dataId: object }>();

/** Assigns each variable (in layout order) its piece of `flat` `[P]`; `flat` stays the caller's. */
export function assignFromFlat(layout: FlatLayout, vars: readonly tf.Variable[], flat: tf.Tensor1D): void {
  const pieces = layout.unflatten(flat);
  for (const [i, n] of layout.names.entries()) {
    vars[i].assign(pieces[n]);
    pieces[n].dispose();
    placed.set(vars[i], { flat, offset: layout.offsets[i], dataId: vars[i].dataId });
  }
}

/**
 * `[P]` the variables (in layout order) as one vector: the very vector of the last `assignFromFlat`
 * when every variable still holds the piece it was given there (`owned: false`: read it, do not
 * dispose it), else a fresh concatenation (`owned: true`: the caller disposes it).
 */
export function flatVariables(layout: FlatLayout, vars: readonly tf.Variable[]): { flat: tf.Tensor1D; owned: boolean } {
  const first = placed.get(vars[0]);
  const reuse =
    first != null &&
    !first.flat.isDisposed &&
    first.flat.size === layout.total &&
    vars.every((v, i) => {
      const p = placed.get(v);
      return p != null && p.flat === first.flat && p.offset === layout.offsets[i] && p.dataId === v.dataId;
    });
  if (reuse) return { flat: first.flat as tf.Tensor1D, owned: false };
  return { flat: layout.flatten(Object.fromEntries(layout.names.map((n, i) => [n, vars[i]]))), owned: true };
}

/**
 * Per-weight variables mirroring a flat vector `[P]`, for readers that want tensors by name (checkpoints,
 * the EMA model file). Made once and refreshed on read only when the vector changed since (`stale`),
 * so reading costs one split per checkpoint, not per step, and the live-tensor count never moves.
 */
export class FlatViews {
  private readonly layout: FlatLayout;
  private readonly vars: Record<string, tf.Variable> = {};
  private fresh = true;

  /** @param flat `[P]` the vector's current value (copied) */
  constructor(layout: FlatLayout, flat: tf.Tensor1D) {
    this.layout = layout;
    for (const [n, t] of Object.entries(layout.unflatten(flat))) {
      this.vars[n] = tf.variable(t, false);
      t.dispose();
    }
  }

  /** The vector changed: the next `read` copies it again. */
  stale(): void {
    this.fresh = false;
  }

  /** The pieces of `flat` `[P]` (its current value) by name: live variables, read, do not dispose. */
  read(flat: tf.Tensor1D): Record<string, tf.Variable> {
    if (!this.fresh) {
      for (const [n, t] of Object.entries(this.layout.unflatten(flat))) {
        this.vars[n].assign(t);
        t.dispose();
      }
      this.fresh = true;
    }
    return { ...this.vars };
  }

  dispose(): void {
    tf.dispose(Object.values(this.vars));
  }
}
