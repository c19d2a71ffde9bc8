import { check, fmtShape, type Rng } from '@t2md/core';
import { BidirectionalMamba, gatherTokens, Mamba2Mixer, type ScanPermutation, scanPermutation } from '@t2md/ssm';
import * as tf from '@tensorflow/tfjs-core';
import type { TokenMixer } from './attention-layers.js';
import type { MambaSettings } from './config.js';
import { type Params, prefixed } from './nn.js';

/**
 * The grid of `T` row-major tokens: `grid` when given (checked), else the square one.
 * An InputError when neither fits.
 */
export function resolveGrid(T: number, grid?: readonly [number, number]): [number, number] {
  if (grid != null) {
    check(
      Array.isArray(grid) && grid.length === 2 && grid[0] * grid[1] === T,
      () => `grid ${JSON.stringify(grid)} does not hold ${T} tokens; pass [rows, cols] with rows·cols = ${T}.`,
    );
    return [grid[0], grid[1]];
  }
  const s = Math.round(Math.sqrt(T));
  check(s * s === T, () => `${T} tokens are not a square grid; pass the grid [rows, cols] of the image.`);
  return [s, s];
}

/**
 * A Mamba-2 token mixer over the height-first (`HM`, column-major) or width-first (`WM`, row-major)
 * order of the token grid, from @t2md/ssm. Bidirectional (the default, T2MD's mixer): the same weights
 * scan the order and its reverse and a merge layer joins the two. With `settings.bidirectional` false
 * (the paper's unidirectional ablation) one `Mamba2` scans the order forward only. Its weights are
 * mamba_ssm's `Mamba2` names under `mixer.` (plus `merge.*` when bidirectional with 'concat'), so a
 * block's state dict reads `blocks.N.mixer.in_proj.weight`, ...
 */
export class MambaMixer implements TokenMixer {
  readonly inner: BidirectionalMamba | Mamba2Mixer;
  /** Scan orders of the unidirectional mixer, per grid. */
  private readonly scans = new Map<string, ScanPermutation>();

  constructor(
    readonly kind: 'HM' | 'WM',
    readonly hiddenSize: number,
    settings: Required<MambaSettings>,
    rng: Rng,
  ) {
    const mamba = {
      dModel: hiddenSize,
      dState: settings.dState,
      expand: settings.expand,
      headdim: settings.headdim,
      ngroups: settings.ngroups,
      dConv: settings.dConv,
      chunkSize: settings.chunkSize,
    };
    // Both variants draw the Mamba-2 weights first from `rng`, so a unidirectional mixer starts from the
    // same Mamba-2 weights as the bidirectional one of the same seed (only the merge layer is missing).
    this.inner = settings.bidirectional
      ? new BidirectionalMamba({ ...mamba, order: kind, merge: settings.merge }, rng)
      : new Mamba2Mixer(mamba, rng);
  }

  /** True when the mixer scans both directions (false: the unidirectional ablation). */
  get bidirectional(): boolean {
    return this.inner instanceof BidirectionalMamba;
  }

  /**
   * @param h `[N, T, D]`
   * @param grid token grid [rows, cols] (default: square)
   * @returns `[N, T, D]`
   */
  apply(h: tf.Tensor, grid?: readonly [number, number]): tf.Tensor {
    check(h.rank === 3, () => `h must have shape [N, T, D], got ${fmtShape(h.shape)}.`);
    const g = resolveGrid(h.shape[1]!, grid);
    const inner = this.inner;
    if (inner instanceof BidirectionalMamba) return tf.tidy(() => inner.apply(h, g));
    // WM is row-major, the grid's own order: no reordering needed.
    if (this.kind === 'WM') return tf.tidy(() => inner.apply(h));
    const { perm, inv } = this.scan(g);
    return tf.tidy(() => {
      const xs = gatherTokens(h, perm, inv); // [N, T, D] in scan order
      return gatherTokens(inner.apply(xs), inv, perm); // [N, T, D] back in grid order
    });
  }

  weights(): Params {
    return prefixed('mixer.', this.inner.weights());
  }

  /** Frees what the mixer keeps between calls (the bidirectional mixer's fused output weight). */
  releaseCaches(): void {
    if (this.inner instanceof BidirectionalMamba) this.inner.releaseCaches();
  }

  dispose(): void {
    this.inner.dispose();
  }

  private scan([H, W]: [number, number]): ScanPermutation {
    const key = `${H}x${W}`;
    let p = this.scans.get(key);
    if (p == null) {
      p = scanPermutation(this.kind, H, W);
      this.scans.set(key, p);
    }
    return p;
  }
}
