import { check, fmtShape, Rng } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { type BlockResult, DiTBlock } from './block.js';
import { type DiTConfig, type ResolvedDiTConfig, resolveConfig } from './config.js';
import { CaptionEmbedder, checkImage, PatchEmbed, silu, TimestepEmbedder } from './embedders.js';
import { FinalLayer } from './final-layer.js';
import type { MixerKind } from './layout.js';
import { MambaMixer } from './mamba-mixer.js';
import { Linear, type Params, prefixed } from './nn.js';
import { sincosPosEmbed } from './pos-embed.js';

/** Options of `DiT.forward`. */
export interface ForwardOptions {
  /** `[N, Lc]` bool: false marks caption padding, which cross-attention ignores. Absent: every token counts. */
  yMask?: tf.Tensor;
  /**
   * `[N]` bool: rows whose caption is replaced by the null caption `y_embedder.y_embedding` (PixArt's
   * `force_drop_ids`, for classifier-free guidance training and sampling); their mask becomes all true.
   * Needs `config.captionLength` = Lc.
   */
  dropCaption?: tf.Tensor;
  /** Also return every block's token-mixer input and output (see `MixerTap`). */
  capture?: boolean;
  /**
   * Activation recomputation (gradient checkpointing) for training: under a gradient tape each block
   * keeps only its inputs for the backward and runs its forward again there (`DiTBlock.applyRecomputed`),
   * so the backward holds one block's intermediates instead of every block's, for one more forward of
   * the blocks. `true`: gradients reach every trainable block weight; a set of variables (the weights a
   * training step updates): only those, and the other weights' gradients are never computed. The same
   * gradients as without it, up to float rounding; the captured mixer inputs carry no gradient. Off a
   * tape it changes nothing.
   */
  recompute?: boolean | ReadonlySet<tf.Variable>;
}

/**
 * One block's token mixer during a forward: `input` is what the mixer saw, i.e. `modulate(norm1(x),
 * shift_msa, scale_msa)` — after the adaLN modulation, so a student mixer fed this tensor sees exactly
 * what the teacher's mixer saw (teacher forcing); `output` is the mixer's result before `gate_msa`.
 * Both `[N, T, D]`.
 */
export interface MixerTap {
  block: number;
  kind: MixerKind;
  input: tf.Tensor;
  output: tf.Tensor;
}

/** What `forward(..., {capture: true})` returns. */
export interface ForwardCapture {
  out: tf.Tensor;
  taps: MixerTap[];
}

/** Positional embeddings kept per grid; a handful covers the resolutions one session uses. */
const POS_CACHE_SIZE = 4;

/** Names of token-mixer weights: `blocks.N.attn.*` (SA) and `blocks.N.mixer.*` (Mamba). */
const MIXER_WEIGHT = /^blocks\.\d+\.(attn|mixer)\./;

/**
 * Which token mixer a weight belongs to, by its state-dict name: 'attention' for `blocks.N.attn.*`
 * (SA), 'mamba' for `blocks.N.mixer.*` (HM/WM), null for every other weight. The one place that reads
 * mixer names (the trainer's `trainable` sets use it too).
 */
export function mixerWeightKind(name: string): 'attention' | 'mamba' | null {
  const m = MIXER_WEIGHT.exec(name);
  return m == null ? null : m[1] === 'attn' ? 'attention' : 'mamba';
}

/**
 * A PixArt-style DiT whose blocks each have a self-attention or (bi- or uni-directional) Mamba-2 token mixer
 * (the teacher is all SA, the T2MD student mostly Mamba). Weights are `tf.Variable`s under PixArt's
 * state-dict names (mamba_ssm's under `blocks.N.mixer.`), in PyTorch layouts. Shapes: N batch, C
 * channels, T tokens, D width, Lc caption tokens, Dc caption width.
 */
export class DiT {
  readonly config: ResolvedDiTConfig;
  /** The mixer of each block, parsed from `config.layout`. */
  readonly layout: readonly MixerKind[];
  readonly xEmbedder: PatchEmbed;
  readonly tEmbedder: TimestepEmbedder;
  /** adaLN-single: SiLU → Linear D → 6D, shared by every block (`t_block.1`). Starts at zero. */
  readonly tBlock: Linear;
  readonly yEmbedder: CaptionEmbedder;
  readonly blocks: readonly DiTBlock[];
  readonly finalLayer: FinalLayer;
  private readonly posCache = new Map<string, tf.Tensor>();
  private disposed = false;

  constructor(config: DiTConfig) {
    const { config: c, layout } = resolveConfig(config);
    this.config = c;
    this.layout = Object.freeze(layout);
    const D = c.hiddenSize;
    // One fork per module: a block's initial weights do not depend on the mixers of the blocks before it.
    const rng = new Rng(c.seed);
    this.xEmbedder = new PatchEmbed(c.inChannels, c.patchSize, D, rng.fork());
    this.tEmbedder = new TimestepEmbedder(D, rng.fork());
    this.tBlock = new Linear(D, 6 * D, 'zeros', rng.fork());
    this.yEmbedder = new CaptionEmbedder(c.captionChannels, D, c.captionLength, rng.fork());
    this.blocks = Object.freeze(layout.map((kind) => new DiTBlock(kind, c, rng.fork())));
    this.finalLayer = new FinalLayer(D, c.patchSize, this.outChannels, rng.fork());
  }

  /** Number of blocks. */
  get depth(): number {
    return this.blocks.length;
  }

  /** Output channels: C, or 2C with learned sigma (eps first). */
  get outChannels(): number {
    return this.config.learnSigma ? 2 * this.config.inChannels : this.config.inChannels;
  }

  /**
   * Predicts the noise (and the variance with learned sigma).
   * @param x `[N, C, H, W]` noisy latents / images (NCHW), H and W multiples of the patch size
   * @param t `[N]` timesteps (float32, or int32 which is cast)
   * @param y `[N, Lc, Dc]` caption features
   * @returns `[N, Cout, H, W]`, or `{out, taps}` with `capture: true`
   */
  forward(x: tf.Tensor, t: tf.Tensor, y: tf.Tensor, opts?: ForwardOptions & { capture?: false }): tf.Tensor;
  forward(x: tf.Tensor, t: tf.Tensor, y: tf.Tensor, opts: ForwardOptions & { capture: true }): ForwardCapture;
  forward(x: tf.Tensor, t: tf.Tensor, y: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor | ForwardCapture {
    check(!this.disposed, 'this model was disposed; load or create it again.');
    const c = this.config;
    checkImage(x, c.inChannels, c.patchSize);
    const N = x.shape[0];
    checkInputs(c, N, t, y, opts);
    const grid: [number, number] = [x.shape[2]! / c.patchSize, x.shape[3]! / c.patchSize];
    const pos = this.posEmbed(grid); // [1, T, D]
    const capture = opts.capture === true;
    const recompute = opts.recompute == null || opts.recompute === false ? false : opts.recompute;
    // The outer tidy keeps the returned tensors (taps included) and frees everything else, also on an
    // exception. Each block runs in its own tidy and the previous tokens are freed as soon as the next
    // block has them, so peak memory is one block's intermediates (at 32,400 tokens × 1152 one [T, D]
    // tensor is 150 MB; holding 28 blocks' worth would not fit a GPU). Under a gradient tape, tfjs keeps
    // its own copies of what the backward needs, so the early frees are safe there too.
    return tf.tidy(() => {
      const D = c.hiddenSize;
      const tf32 = t.dtype === 'float32' ? t : tf.cast(t, 'float32');
      let h = tf.add(this.xEmbedder.apply(x), pos); // [N, T, D]
      const temb = this.tEmbedder.apply(tf32); // [N, D]
      const t0 = tf.reshape(this.tBlock.apply(silu(temb)), [N, 6, D]); // [N, 6, D]
      let yIn = y;
      let mask = opts.yMask;
      if (opts.dropCaption != null) {
        const drop = opts.dropCaption;
        // y·(1 − d) + e·d with d ∈ {0, 1} picks either exactly. Not tf.where: it broadcasts the [N, 1, 1]
        // flags by a Tile, which tfjs-webgpu runs on the CPU for a tensor not yet uploaded (the flags come
        // from the host every step), then uploads the [N, Lc, Dc] result: ~20 ms a training step at batch 128.
        const d = tf.reshape(tf.cast(drop, 'float32'), [N, 1, 1]);
        yIn = tf.add(tf.mul(y, tf.sub(1, d)), tf.mul(tf.expandDims(this.yEmbedder.yEmbedding!, 0), d)); // [N, Lc, Dc]
        if (mask != null) mask = tf.logicalOr(mask, tf.reshape(drop, [N, 1])); // [N, Lc]
      }
      const yEmb = this.yEmbedder.apply(yIn); // [N, Lc, D]
      const taps: MixerTap[] = [];
      for (const [i, block] of this.blocks.entries()) {
        const r = tf.tidy(
          () =>
            (recompute === false
              ? block.apply(h, t0, yEmb, mask, grid, capture)
              : block.applyRecomputed(h, t0, yEmb, mask, grid, capture, recompute)) as unknown as tf.TensorContainer,
        ) as unknown as BlockResult;
        h.dispose(); // taps hold the mixer's input and output, never h
        h = r.x;
        if (capture) taps.push({ block: i, kind: block.kind, input: r.input!, output: r.output! });
      }
      const out = this.finalLayer.apply(h, temb, grid); // [N, Cout, H, W]
      return (capture ? { out, taps } : out) as unknown as tf.TensorContainer;
    }) as unknown as tf.Tensor | ForwardCapture;
  }

  /**
   * The positional embedding `[1, T, D]` of a token grid (config.posEmbed, config.baseGrid), computed
   * once per grid and kept (the model owns it; `dispose()` frees it).
   */
  posEmbed(grid: readonly [number, number]): tf.Tensor {
    const key = `${grid[0]}x${grid[1]}`;
    let pe = this.posCache.get(key);
    if (pe == null) {
      const c = this.config;
      const values = sincosPosEmbed(grid, c.hiddenSize, c.posEmbed, c.baseGrid);
      pe = tf.keep(tf.tensor(values, [1, grid[0] * grid[1], c.hiddenSize], 'float32'));
      if (this.posCache.size >= POS_CACHE_SIZE) {
        const oldest = this.posCache.keys().next().value!;
        this.posCache.get(oldest)!.dispose();
        this.posCache.delete(oldest);
      }
      this.posCache.set(key, pe);
    }
    return pe;
  }

  /**
   * Frees the positional embeddings `posEmbed` keeps (one `[1, T, D]` per grid: 142 MiB at 32,400
   * tokens of D = 1152) and the fused output weights the bidirectional Mamba mixers keep for short
   * calls; the next forward makes what it needs again. For a process that keeps
   * several models resident and uses one at a time (the scaling bench), or moves on from a grid.
   */
  releaseCaches(): void {
    for (const pe of this.posCache.values()) pe.dispose();
    this.posCache.clear();
    for (const b of this.blocks) if (b.mixer instanceof MambaMixer) b.mixer.releaseCaches();
  }

  /** The null caption `[N, Lc, Dc]` (PixArt's `y_embedding`) for classifier-free guidance; needs config.captionLength. */
  nullCaption(batch: number): tf.Tensor {
    const e = this.yEmbedder.yEmbedding;
    check(e != null, 'this model has no null caption; set config.captionLength to give it one.');
    return tf.tidy(() => tf.tile(tf.expandDims(e, 0), [batch, 1, 1]));
  }

  /**
   * Every weight by PixArt state-dict name (`x_embedder.proj.weight`, `blocks.3.attn.qkv.weight`,
   * `blocks.4.mixer.in_proj.weight`, ...). The same Variables on every call: assign to load, pass to an
   * optimizer to train.
   */
  weights(): Params {
    check(!this.disposed, 'this model was disposed; load or create it again.');
    const out: Params = {
      ...prefixed('x_embedder.', this.xEmbedder.weights()),
      ...prefixed('t_embedder.', this.tEmbedder.weights()),
      ...prefixed('t_block.1.', this.tBlock.weights()),
      ...prefixed('y_embedder.', this.yEmbedder.weights()),
    };
    for (const [i, b] of this.blocks.entries()) Object.assign(out, prefixed(`blocks.${i}.`, b.weights()));
    Object.assign(out, prefixed('final_layer.', this.finalLayer.weights()));
    return out;
  }

  /** The weights a training step may change (all but the null caption buffer `y_embedder.y_embedding`). */
  trainableWeights(): Params {
    return Object.fromEntries(Object.entries(this.weights()).filter(([, v]) => v.trainable));
  }

  /** The token-mixer weights (`blocks.N.attn.*` and `blocks.N.mixer.*`): what distillation trains. */
  mixerWeights(): Params {
    return Object.fromEntries(Object.entries(this.weights()).filter(([name]) => mixerWeightKind(name) != null));
  }

  /** True for the name of a token-mixer weight (of `kind` when given). */
  isMixerWeight(name: string, kind?: 'attention' | 'mamba'): boolean {
    const k = mixerWeightKind(name);
    return k != null && (kind == null || k === kind);
  }

  /** Frees every weight and cached embedding; the model cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    // Each weight exactly once: Variable.dispose is not idempotent (a second call corrupts tfjs's counts).
    tf.dispose([
      ...Object.values(this.xEmbedder.weights()),
      ...Object.values(this.tEmbedder.weights()),
      ...Object.values(this.tBlock.weights()),
      ...Object.values(this.yEmbedder.weights()),
      ...Object.values(this.finalLayer.weights()),
    ]);
    for (const b of this.blocks) b.dispose();
    this.releaseCaches();
    this.disposed = true;
  }
}

/** Builds a model from a config (a preset such as `pixartXL2`, or your own); throws an InputError for a bad one. */
export function createDiT(config: DiTConfig): DiT {
  return new DiT(config);
}

function checkInputs(c: ResolvedDiTConfig, N: number, t: tf.Tensor, y: tf.Tensor, opts: ForwardOptions): void {
  check(t != null && Array.isArray(t.shape), 't must be a tensor [N] of timesteps.');
  check(
    t.rank === 1 && t.shape[0] === N && (t.dtype === 'float32' || t.dtype === 'int32'),
    () => `t must be a float32 or int32 tensor of shape [${N}] (one timestep per image), got ${t.dtype} ${fmtShape(t.shape)}.`,
  );
  check(y != null && Array.isArray(y.shape), `y must be a tensor [N, Lc, ${c.captionChannels}] of caption features.`);
  check(y.dtype === 'float32', () => `y must be float32, got ${y.dtype}.`);
  check(
    y.rank === 3 && y.shape[0] === N && y.shape[1]! > 0,
    () => `y must have shape [${N}, Lc, ${c.captionChannels}] (caption features), got ${fmtShape(y.shape)}.`,
  );
  check(
    y.shape[2] === c.captionChannels,
    () =>
      `caption features y are ${y.shape[2]} wide but the model expects captionChannels = ${c.captionChannels} (y ${fmtShape(y.shape)}); use the text encoder the model was built for.`,
  );
  const Lc = y.shape[1];
  if (opts.yMask != null) {
    const m = opts.yMask;
    check(
      m.dtype === 'bool' && m.rank === 2 && m.shape[0] === N && m.shape[1] === Lc,
      () => `yMask must be a bool tensor of shape [${N}, ${Lc}] (matching y ${fmtShape(y.shape)}), got ${m.dtype} ${fmtShape(m.shape)}.`,
    );
  }
  if (opts.dropCaption != null) {
    const d = opts.dropCaption;
    check(
      d.dtype === 'bool' && d.rank === 1 && d.shape[0] === N,
      () => `dropCaption must be a bool tensor of shape [${N}], got ${d.dtype} ${fmtShape(d.shape)}.`,
    );
    check(c.captionLength === Lc, () =>
      c.captionLength == null
        ? 'dropCaption needs a null caption; build the model with config.captionLength.'
        : `dropCaption replaces captions by the ${c.captionLength}-token null caption, but y has ${Lc} tokens; pad captions to ${c.captionLength}.`,
    );
  }
}
