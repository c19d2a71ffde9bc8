import { check, fmtShape, type Rng } from '@t2md/core';
import { BidirectionalMamba } from '@t2md/ssm';
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
 * A bidirectional Mamba-2 token mixer over the height-first (`HM`, column-major) or width-first (`WM`,
 * row-major) order of the token grid, from @t2md/ssm. Its weights are mamba_ssm's `Mamba2` names under
 * `mixer.` (plus the merge layer), so a block's state dict reads `blocks.N.mixer.in_proj.weight`, ...
 */
export class MambaMixer implements TokenMixer {
  readonly inner: BidirectionalMamba;

  constructor(
    readonly kind: 'HM' | 'WM',
    readonly hiddenSize: number,
    settings: Required<MambaSettings>,
    rng: Rng,
  ) {
    this.inner = new BidirectionalMamba(
      {
        dModel: hiddenSize,
        dState: settings.dState,
        expand: settings.expand,
        headdim: settings.headdim,
        ngroups: settings.ngroups,
        dConv: settings.dConv,
        chunkSize: settings.chunkSize,
        order: kind,
        merge: settings.merge,
      },
      rng,
    );
  }

  /**
   * @param h `[N, T, D]`
   * @param grid token grid [rows, cols] (default: square)
   * @returns `[N, T, D]`
   */
  apply(h: tf.Tensor, grid?: readonly [number, number]): tf.Tensor {
    check(h.rank === 3, () => `h must have shape [N, T, D], got ${fmtShape(h.shape)}.`);
    const g = resolveGrid(h.shape[1]!, grid);
    return tf.tidy(() => this.inner.apply(h, g));
  }

  weights(): Params {
    return prefixed('mixer.', this.inner.weights());
  }

  dispose(): void {
    this.inner.dispose();
  }
}
