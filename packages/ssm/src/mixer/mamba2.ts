import { assertFloat, assertRank, check, fmtShape, hostSplit, type Rng } from '@t2md/core';
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

/** What in_proj makes of the tokens: the gate z, the conv input xBC and dt, each `[B, L, ·]`. */
export interface Mamba2Projections {
  /** `[B, L, dInner]` */
  z: tf.Tensor;
  /**
   * `[B, L, convDim]` (x, B and C before the conv), or already cut into x `[B, L, dInner]`, B and C
   * `[B, L, G·N]` (the conv is per channel, so each part is convolved on its own and no split follows)
   */
  xBC: tf.Tensor | XbcParts;
  /** `[B, L, H]` */
  dt: tf.Tensor;
}

/** xBC cut into its parts before the conv: `[B, L, dInner]`, `[B, L, G·N]`, `[B, L, G·N]`. */
export interface XbcParts {
  x: tf.Tensor;
  B: tf.Tensor;
  C: tf.Tensor;
}

/**
 * in_proj, per token: `[B, L, D]` → z, xBC, dt. Splitting the weight rows (small) rather than the
 * activation columns (B·L wide) keeps each output contiguous. Call inside `tf.tidy`.
 */
export function mamba2InProj(
  w: Record<string, tf.Tensor>,
  x: tf.Tensor,
  c: Required<Mamba2Config>,
): Mamba2Projections & { xBC: tf.Tensor } {
  const { dInner, nheads, convDim } = mamba2Dims(c);
  const [z, xBC, dt] = inProjRows(w, x, [dInner, convDim, nheads]);
  return { z: z!, xBC: xBC!, dt: dt! }; // [B, L, dInner], [B, L, convDim], [B, L, H]
}

/**
 * x · Wᵢᵀ for in_proj's row blocks of `sizes`: one split of the weight (its gradient is one concat;
 * slices would cost zero-padded copies and adds), then each linear in its own tidy, so that no
 * intermediate view holds an output's data once a caller frees it.
 */
function inProjRows(w: Record<string, tf.Tensor>, x: tf.Tensor, sizes: number[]): tf.Tensor[] {
  return tf.split(w['in_proj.weight'], sizes, 0).map((Wi) => tf.tidy(() => linear(x, Wi)));
}

/** What `mamba2InProjLateGate` returns: the projections but z, and `gate()` to make z. */
export type LateGateProjections = Omit<Mamba2Projections, 'z' | 'xBC'> & { xBC: XbcParts; gate: () => tf.Tensor };

/**
 * `mamba2InProjParts` with the gate made late: x, B, C and dt now (in_proj's rows split five ways, one
 * linear each), and `gate()` making z `[B, L, dInner]` from `x` (which the caller keeps alive) when the
 * gated norm needs it. A caller that scans first holds one `[B, L, dInner]` tensor fewer during the
 * scan (issue 23). Call inside `tf.tidy`; `gate()` inside one too.
 */
export function mamba2InProjLateGate(w: Record<string, tf.Tensor>, x: tf.Tensor, c: Required<Mamba2Config>): LateGateProjections {
  const { dInner, nheads } = mamba2Dims(c);
  const GN = c.ngroups * c.dState;
  const sizes = [dInner, dInner, GN, GN, nheads];
  const Ws = tf.split(w['in_proj.weight'], sizes, 0); // one split, as inProjRows
  const [xs, Bs, Cs, dt] = Ws.slice(1).map((Wi) => tf.tidy(() => linear(x, Wi)));
  tf.dispose(Ws.slice(1));
  const Wz = Ws[0]!;
  const gate = () => {
    const z = linear(x, Wz); // [B, L, dInner]
    Wz.dispose();
    return z;
  };
  return { xBC: { x: xs!, B: Bs!, C: Cs! }, dt: dt!, gate };
}

/**
 * `mamba2InProj` with xBC made as its parts x `[B, L, dInner]`, B and C `[B, L, G·N]` by one linear
 * each (in_proj's rows split four ways): every output column is the same dot product as in the one
 * xBC linear, and no `[B, L, convDim]` tensor (nor the split's copies of it) is made. For inference
 * paths that convolve the parts apart (`XbcParts`). Call inside `tf.tidy`.
 */
export function mamba2InProjParts(
  w: Record<string, tf.Tensor>,
  x: tf.Tensor,
  c: Required<Mamba2Config>,
): Mamba2Projections & { xBC: XbcParts } {
  const { gate, ...p } = mamba2InProjLateGate(w, x, c);
  return { z: gate(), ...p };
}

/**
 * Everything between in_proj and out_proj: the causal conv with SiLU, the SSD scan and the gated
 * RMSNorm (without its weight, which `mamba2OutWeight` folds into out_proj). A batch whose chunk
 * states would pass WebGPU's per-binding limit is split by `ssdScan` itself. Call inside `tf.tidy`.
 * @param free called on each of `p`'s tensors and each intermediate once nothing later reads it:
 *   a caller outside a gradient tape passes `tf.dispose` to hold fewer activations at once (the
 *   default leaves them all to the enclosing tidy).
 * @returns `[B, L, dInner]`
 */
export function mamba2Core(
  w: Record<string, tf.Tensor>,
  p: Mamba2Projections,
  c: Required<Mamba2Config>,
  free: (...ts: tf.Tensor[]) => void = () => {},
): tf.Tensor {
  const { dInner } = mamba2Dims(c);
  const y = mamba2Scan(w, p, c, free); // [B, L, dInner]
  const out = tf.tidy(() => gatedRmsNormFused(y, p.z, dInner / c.ngroups, c.normEps)); // [B, L, dInner], one fused kernel
  free(y, p.z);
  return out;
}

/**
 * `mamba2Core` without its gated norm: the conv with SiLU and the SSD scan, `[B, L, dInner]`. For
 * callers that gate elsewhere (the bidirectional mixer gates after gathering both directions back).
 */
export function mamba2Scan(
  w: Record<string, tf.Tensor>,
  p: Omit<Mamba2Projections, 'z'>,
  c: Required<Mamba2Config>,
  free: (...ts: tf.Tensor[]) => void = () => {},
): tf.Tensor {
  const [B, L] = p.dt.shape as number[];
  const { dInner } = mamba2Dims(c);
  const A = tf.neg(tf.exp(w.A_log)); // [H]
  const noLimit = c.dtLimit[0] === 0 && c.dtLimit[1] == null;
  // Each stage in its own tidy: only its output then holds data, so `free` really releases it.
  const [xs, Bm, Cm] = 'shape' in p.xBC ? convSplit(w, p.xBC, c, free) : convParts(w, p.xBC, c, free);
  const y = tf.tidy(
    () =>
      ssdScan(
        { x: xs, dt: p.dt, A, B: Bm, C: Cm, D: w.D, dtBias: w.dt_bias },
        { chunkSize: c.chunkSize, dtSoftplus: true, ...(noLimit ? {} : { dtLimit: c.dtLimit }) },
      ).y,
  ); // [B, L, H, P]
  free(xs, Bm, Cm, p.dt);
  return tf.reshape(y, [B!, L!, dInner]);
}

/** The conv of the whole xBC, then one split into x `[B, L, H, P]`, B and C `[B, L, G, N]`. */
function convSplit(w: Record<string, tf.Tensor>, xBCin: tf.Tensor, c: Required<Mamba2Config>, free: (...ts: tf.Tensor[]) => void) {
  const [B, L] = xBCin.shape as number[];
  const { dInner, nheads } = mamba2Dims(c);
  const [G, N] = [c.ngroups, c.dState];
  const xBC = tf.tidy(() => causalConv1dSilu(xBCin, w['conv1d.weight'], w['conv1d.bias'])); // [B, L, convDim]
  free(xBCin);
  // one split of the conv output: its gradient is one concat (three column slices cost three
  // zero-padded full-size copies and two adds in the backward)
  const parts = tf.tidy(() => {
    // hostSplit: tf.split on webgpu; on cpu and wasm a copy of each part's columns (tfjs-wasm's SplitV
    // reads all of xBC back for every part)
    const [a, b, cc] = hostSplit(xBC, [dInner, G * N, G * N]);
    return [
      tf.reshape(a!, [B, L, nheads, c.headdim]), // [B, L, H, P]
      tf.reshape(b!, [B, L, G, N]), // [B, L, G, N]
      tf.reshape(cc!, [B, L, G, N]), // [B, L, G, N]
    ];
  }) as [tf.Tensor, tf.Tensor, tf.Tensor];
  free(xBC);
  return parts;
}

/**
 * The conv of x, B and C given apart (`XbcParts`), each with its channels' slice of the conv weight
 * and bias: the same per-channel sums as `convSplit` without its split, a copy of every activation
 * (on wasm 3% of the shapes student's forward).
 */
function convParts(w: Record<string, tf.Tensor>, p: XbcParts, c: Required<Mamba2Config>, free: (...ts: tf.Tensor[]) => void) {
  const [B, L] = p.x.shape as number[];
  const { dInner, nheads } = mamba2Dims(c);
  const [G, N] = [c.ngroups, c.dState];
  const sizes = [dInner, G * N, G * N];
  const ws = tf.split(w['conv1d.weight']!, sizes, 0); // [n, 1, K] each
  const bs = tf.split(w['conv1d.bias']!, sizes, 0);
  const shapes = [
    [B, L, nheads, c.headdim], // [B, L, H, P]
    [B, L, G, N],
    [B, L, G, N],
  ];
  const out = [p.x, p.B, p.C].map((part, k) => {
    const r = tf.tidy(() => tf.reshape(causalConv1dSilu(part, ws[k]!, bs[k]!), shapes[k]!));
    free(part);
    return r;
  }) as [tf.Tensor, tf.Tensor, tf.Tensor];
  tf.dispose([...ws, ...bs]);
  return out;
}

/** out_proj's weight with norm.weight folded into its columns `[D, dInner]`: saves a pass over the activations. */
export function mamba2OutWeight(w: Record<string, tf.Tensor>): tf.Tensor {
  return tf.mul(w['out_proj.weight'], w['norm.weight']);
}

/**
 * The mixer as a function of its weights (any tensors with the state-dict names and shapes), for
 * wrappers that batch several calls into one. Call inside `tf.tidy`.
 * @param x `[B, L, D]`
 * @returns `[B, L, D]`
 */
export function mamba2Forward(w: Record<string, tf.Tensor>, x: tf.Tensor, c: Required<Mamba2Config>): tf.Tensor {
  const free = releaser();
  const yn = mamba2Core(w, mamba2InProj(w, x, c), c, free); // [B, L, dInner]
  const out = linear(yn, mamba2OutWeight(w)); // [B, L, D]
  free(yn);
  return out;
}

/** Whether tfjs is recording a gradient tape now (inside `tf.grads` / `variableGrads`). */
export function recordingGradients(): boolean {
  return (tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();
}

/**
 * `mamba2Core`'s `free`: disposes activations as soon as they are used when no gradient tape records
 * (inference: a tidy would keep every one to its end), keeps them when one does (the backward reads them).
 */
export function releaser(): (...ts: tf.Tensor[]) => void {
  return recordingGradients() ? () => {} : (...ts) => tf.dispose(ts);
}
