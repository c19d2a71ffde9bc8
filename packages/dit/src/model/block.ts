import { check, fmtShape, geluTanh, type Rng, recomputed, tapeIsRecording, withoutGradient } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { CrossAttention, SelfAttention, type TokenMixer } from './attention-layers.js';
import type { ResolvedDiTConfig } from './config.js';
import type { MixerKind } from './layout.js';
import { MambaMixer } from './mamba-mixer.js';
import { Linear, makeVariable, type Params, prefixed } from './nn.js';
import { adaNorm } from './ops/ada-norm.js';
import { gatedAdd } from './ops/gated-add.js';

/** DiT's MLP: fc1 (D → D·ratio) → GELU(tanh) → fc2, xavier-uniform. */
export class Mlp {
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(hiddenSize: number, mlpHidden: number, rng: Rng) {
    this.fc1 = new Linear(hiddenSize, mlpHidden, 'xavier', rng);
    this.fc2 = new Linear(mlpHidden, hiddenSize, 'xavier', rng);
  }

  /** `[..., D]` → `[..., D]` */
  apply(x: tf.Tensor): tf.Tensor {
    return this.fc2.apply(geluTanh(this.fc1.apply(x)));
  }

  weights(): Params {
    return { ...prefixed('fc1.', this.fc1.weights()), ...prefixed('fc2.', this.fc2.weights()) };
  }
}

/** What one block returns: the new tokens and, when captured, its token mixer's input and output. */
export interface BlockResult {
  x: tf.Tensor;
  input?: tf.Tensor;
  output?: tf.Tensor;
}

/**
 * PixArt's block with a pluggable token mixer (`SA`, `HM` or `WM`):
 * ```
 * shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = scale_shift_table + t0   // [N, 1, D] each
 * h = modulate(norm1(x), shift_msa, scale_msa)          // the mixer's input (tapped)
 * x = x + gate_msa · mixer(h)                           // mixer(h) before the gate (tapped)
 * x = x + cross_attn(x, y, yMask)
 * x = x + gate_mlp · mlp(modulate(norm2(x), shift_mlp, scale_mlp))
 * ```
 * norms are LayerNorm without affine, eps 1e-6. `scale_shift_table` `[6, D]` starts at zero (PixArt
 * draws it from N(0, 1/D)); with the zero `t_block` and cross-attention projection, every gate and the
 * cross-attention output start at zero, so a fresh block is exactly the identity (DiT's adaLN-Zero idea).
 */
export class DiTBlock {
  readonly mixer: TokenMixer;
  readonly crossAttn: CrossAttention;
  readonly mlp: Mlp;
  readonly scaleShiftTable: tf.Variable;

  constructor(
    readonly kind: MixerKind,
    config: ResolvedDiTConfig,
    rng: Rng,
  ) {
    const D = config.hiddenSize;
    this.mixer = kind === 'SA' ? new SelfAttention(D, config.numHeads, rng.fork()) : new MambaMixer(kind, D, config.mamba, rng.fork());
    this.crossAttn = new CrossAttention(D, config.numHeads, rng.fork());
    this.mlp = new Mlp(D, Math.round(D * config.mlpRatio), rng.fork());
    this.scaleShiftTable = makeVariable(new Float32Array(6 * D), [6, D]);
  }

  /**
   * @param x `[N, T, D]` tokens
   * @param t0 `[N, 6, D]` the shared adaLN-single output
   * @param y `[N, Lc, D]` projected caption
   * @param yMask `[N, Lc]` bool, or undefined for no padding
   * @param grid token grid [rows, cols]
   * @param capture also return the mixer's input (after modulation) and output (before the gate)
   */
  apply(
    x: tf.Tensor,
    t0: tf.Tensor,
    y: tf.Tensor,
    yMask: tf.Tensor | undefined,
    grid: readonly [number, number],
    capture = false,
  ): BlockResult {
    check(
      x.rank === 3 && t0.rank === 3,
      () => `block inputs must be x [N, T, D] and t0 [N, 6, D], got ${fmtShape(x.shape)} and ${fmtShape(t0.shape)}.`,
    );
    // rows of ada: shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp (PixArt's chunk order);
    // adaNorm and gatedAdd read their rows in place, so no slices are made
    const ada = tf.add(this.scaleShiftTable, t0); // [N, 6, D]
    const h = adaNorm(x, ada, 0, 1); // modulate(norm1(x), shift_msa, scale_msa)  [N, T, D]
    const m = this.mixer.apply(h, grid); // [N, T, D]
    x = gatedAdd(x, m, ada, 2); // x + gate_msa · m
    x = tf.add(x, this.crossAttn.apply(x, y, yMask));
    const h2 = adaNorm(x, ada, 3, 4); // modulate(norm2(x), shift_mlp, scale_mlp)
    x = gatedAdd(x, this.mlp.apply(h2), ada, 5); // x + gate_mlp · mlp(h2)
    return capture ? { x, input: h, output: m } : { x };
  }

  /**
   * `apply` with activation recomputation under a gradient tape (`ForwardOptions.recompute`): the tape
   * keeps only the block's inputs and runs the block's forward again during the backward. Gradients
   * reach `x`, `t0`, `y` and the block's weights in `weights` (all trainable ones for `true`); the others
   * are constants here, so their weight gradients are never computed. The captured mixer input has no
   * gradient (a loss on it would not train anything through this block); the captured output has.
   * Off a tape it is `apply`.
   */
  applyRecomputed(
    x: tf.Tensor,
    t0: tf.Tensor,
    y: tf.Tensor,
    yMask: tf.Tensor | undefined,
    grid: readonly [number, number],
    capture: boolean,
    weights: true | ReadonlySet<tf.Variable>,
  ): BlockResult {
    if (!tapeIsRecording()) return this.apply(x, t0, y, yMask, grid, capture);
    const own = Object.values(this.weights()).filter((v) => (weights === true ? v.trainable : weights.has(v)));
    const part = ([xi, t0i, yi]: tf.Tensor[], [mask]: tf.Tensor[]) => this.apply(xi!, t0i!, yi!, mask, grid, capture);
    const masks = yMask ? [yMask] : [];
    if (!capture) return { x: recomputed((xs, c) => part(xs, c).x, [x, t0, y], own, masks) };
    const [out, output] = recomputed(
      (xs, c) => {
        const r = part(xs, c);
        return [r.x, r.output!];
      },
      [x, t0, y],
      own,
      masks,
    );
    // the mixer's input again (one LayerNorm), outside the tape: see above
    const input = withoutGradient(() => adaNorm(x, tf.add(this.scaleShiftTable, t0), 0, 1));
    return { x: out!, input, output: output! };
  }

  /** Weights by name relative to the block (`scale_shift_table`, `attn.*` or `mixer.*`, `cross_attn.*`, `mlp.*`). */
  weights(): Params {
    return {
      scale_shift_table: this.scaleShiftTable,
      ...this.mixer.weights(),
      ...prefixed('cross_attn.', this.crossAttn.weights()),
      ...prefixed('mlp.', this.mlp.weights()),
    };
  }

  /** Frees the block's weights (the mixer's through its own dispose). */
  dispose(): void {
    tf.dispose([this.scaleShiftTable, ...Object.values(this.crossAttn.weights()), ...Object.values(this.mlp.weights())]);
    this.mixer.dispose();
  }
}
