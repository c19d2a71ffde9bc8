import { assertFloat, assertRank, check, fmtShape, type Rng } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { ssdScan } from '../ssd/index.js';
import { type Mamba2Config, mamba2Dims, mamba2WeightShapes, resolveMamba2Config } from './config.js';
import { causalConv1dSilu } from './conv1d.js';
import { gatedRmsNormFused } from './gated-norm.js';
import { initMamba2Weights } from './init.js';
import { linear } from './layers.js';

/**
 * The Mamba-2 token mixer (mamba_ssm's `Mamba2` with `rmsnorm=True`, no biases, no d_mlp), with its
 * weights as trainable `tf.Variable`s under mamba_ssm's state-dict names and PyTorch layouts, so a
 * checkpoint crosses to PyTorch and back unchanged.
 *
 * `apply(x)`: in_proj -> (z, xBC, dt); xBC = silu(causal depthwise conv1d(xBC)) (one fused kernel); split x, B, C;
 * y = ssdScan(x, dt, A = -exp(A_log), B, C, D, dtBias, softplus); y = RMSNorm(y * silu(z)); out_proj.
 */
export class Mamba2Mixer {
  readonly config: Required<Mamba2Config>;
  private readonly vars: Record<string, tf.Variable>;
  private disposed = false;

  constructor(config: Mamba2Config, rng: Rng) {
    this.config = resolveMamba2Config(config);
    check(rng != null && typeof (rng as Rng).uniforms === 'function', 'rng must be an Rng from @t2md/core (new Rng(seed)).');
    const values = initMamba2Weights(this.config, rng);
    const shapes = mamba2WeightShapes(this.config);
    this.vars = {};
    for (const [name, shape] of Object.entries(shapes)) {
      this.vars[name] = tf.tidy(() => tf.variable(tf.tensor(values[name], shape, 'float32'), true));
    }
  }

  /**
   * The weights by mamba_ssm state-dict name (the same Variables every call: assign to them to load a
   * checkpoint, pass them to an optimizer to train).
   */
  weights(): Record<string, tf.Variable> {
    this.assertLive();
    return { ...this.vars };
  }

  /**
   * @param x `[B, L, D]` float32, D = config.dModel
   * @returns `[B, L, D]`
   */
  apply(x: tf.Tensor): tf.Tensor {
    this.assertLive();
    checkMixerInput('x', x, this.config.dModel);
    return tf.tidy(() => mamba2Forward(this.vars, x, this.config));
  }

  /** Frees the weights; the mixer cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of Object.values(this.vars)) v.dispose();
  }

  private assertLive(): void {
    check(!this.disposed, 'this Mamba2Mixer was disposed; create a new one.');
  }
}

/** Checks a mixer input `[B, L, D]` (float32, D = dModel, L >= 1). */
export function checkMixerInput(name: string, x: tf.Tensor, dModel: number): void {
  assertFloat(name, x);
  assertRank(name, x, 3, 'B L D');
  check(
    x.shape[2] === dModel,
    () =>
      `${name} must have shape [B, L, ${dModel}] (dModel = ${dModel}), got ${fmtShape(x.shape)}; project it to dModel channels or build the mixer with dModel = ${x.shape[2]}.`,
  );
  check(
    x.shape.every((d) => d >= 1),
    () => `${name} must have at least one batch entry and one token, got ${fmtShape(x.shape)}.`,
  );
}

/**
 * The mixer as a function of its weights (any tensors with the state-dict names and shapes), for
 * wrappers that batch several calls into one. Call inside `tf.tidy`. A batch whose chunk states
 * would pass WebGPU's per-binding limit is split by `ssdScan` itself.
 * @param x `[B, L, D]`
 * @returns `[B, L, D]`
 */
export function mamba2Forward(w: Record<string, tf.Tensor>, x: tf.Tensor, c: Required<Mamba2Config>): tf.Tensor {
  const [B, L] = x.shape as number[];
  const { dInner, nheads, convDim } = mamba2Dims(c);
  const P = c.headdim;
  const G = c.ngroups;
  const N = c.dState;
  // Slicing the weight rows (small) rather than the activation columns (B*L wide) keeps each output contiguous.
  const Win = w['in_proj.weight']; // [dInProj, D]
  const z = linear(x, tf.slice(Win, [0, 0], [dInner, c.dModel])); // [B, L, dInner]
  const xBCpre = linear(x, tf.slice(Win, [dInner, 0], [convDim, c.dModel])); // [B, L, convDim]
  const dt = linear(x, tf.slice(Win, [dInner + convDim, 0], [nheads, c.dModel])); // [B, L, H]
  const xBC = causalConv1dSilu(xBCpre, w['conv1d.weight'], w['conv1d.bias']); // [B, L, convDim]
  const A = tf.neg(tf.exp(w.A_log)); // [H]
  const noLimit = c.dtLimit[0] === 0 && c.dtLimit[1] == null;
  const xs = tf.reshape(tf.slice(xBC, [0, 0, 0], [B, L, dInner]), [B, L, nheads, P]); // [B, L, H, P]
  const Bm = tf.reshape(tf.slice(xBC, [0, 0, dInner], [B, L, G * N]), [B, L, G, N]); // [B, L, G, N]
  const Cm = tf.reshape(tf.slice(xBC, [0, 0, dInner + G * N], [B, L, G * N]), [B, L, G, N]); // [B, L, G, N]
  const y = ssdScan(
    { x: xs, dt, A, B: Bm, C: Cm, D: w.D, dtBias: w.dt_bias },
    { chunkSize: c.chunkSize, dtSoftplus: true, ...(noLimit ? {} : { dtLimit: c.dtLimit }) },
  ).y; // [B, L, H, P]
  const yn = gatedRmsNormFused(tf.reshape(y, [B, L, dInner]), z, dInner / G, c.normEps); // [B, L, dInner], one fused kernel
  // norm.weight scales out_proj's input columns: folding it into the (small) weight saves a pass over yn.
  return linear(yn, tf.mul(w['out_proj.weight'], w['norm.weight'])); // [B, L, D]
}
