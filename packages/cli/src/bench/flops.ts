/**
 * What one denoising forward of a DiT or hybrid model costs, counted from its config: the FLOPs (2 per
 * multiply-add) of every matrix product, and the GEMM shapes of its linear layers (for timing the
 * matMul rate on exactly those shapes). Norms, modulation, activations and the scan's elementwise
 * work are left out: they are a few % of the products, and the rate compared with is a GEMM rate.
 */
import { parseLayout, type ResolvedDiTConfig } from '@t2md/dit';

/** One linear layer's product `[M, K] × [K, N]` and how often a forward runs it. */
export interface GemmShape {
  M: number;
  K: number;
  N: number;
  count: number;
}

export interface ForwardCost {
  /** All FLOPs of one forward of `batch` images. */
  flops: number;
  /** Of those, the linear layers' (what `gemms` lists). */
  linearFlops: number;
  /** Attention products (q kᵀ and p v, self and cross) and the SSD scans (as the recurrence: 4·P·N per token and head). */
  mixFlops: number;
  gemms: GemmShape[];
}

/**
 * The cost of one forward over `batch` images of `tokens` tokens each with `captionTokens` caption
 * tokens (a guided sampling step runs the model on 2·images rows).
 */
export function forwardCost(config: ResolvedDiTConfig, batch: number, tokens: number, captionTokens: number): ForwardCost {
  const D = config.hiddenSize;
  const T = batch * tokens;
  const Lc = batch * captionTokens;
  const gemms: GemmShape[] = [];
  const add = (M: number, K: number, N: number, count = 1) => {
    const same = gemms.find((g) => g.M === M && g.K === K && g.N === N);
    if (same) same.count += count;
    else gemms.push({ M, K, N, count });
  };
  let mix = 0;
  const patchIn = config.patchSize ** 2 * config.inChannels;
  add(T, patchIn, D); // patch embedding
  add(Lc, config.captionChannels, D); // caption embedder
  add(Lc, D, D);
  add(batch, D, 6 * D); // adaLN-single (the timestep MLP before it is as small)
  add(T, D, patchIn * (config.learnSigma ? 2 : 1)); // final layer
  const mlp = Math.round(D * config.mlpRatio);
  const m = config.mamba;
  const dInner = m.expand * D;
  const heads = dInner / m.headdim;
  const inProj = 2 * dInner + 2 * m.ngroups * m.dState + heads; // z, x, B, C, dt
  for (const kind of parseLayout(config.layout)) {
    if (kind === 'SA') {
      add(T, D, 3 * D);
      add(T, D, D);
      mix += 4 * batch * tokens * tokens * D; // q kᵀ and p v over all heads
    } else {
      const dirs = m.bidirectional ? 2 : 1;
      add(T, D, inProj); // shared by both directions
      add(T, dirs * dInner, D); // out_proj (merged with the merge layer when bidirectional)
      mix += dirs * 4 * T * dInner * m.dState;
    }
    add(T, D, D); // cross-attention q
    add(Lc, D, 2 * D); // cross-attention k, v
    add(T, D, D); // cross-attention out
    mix += 4 * T * captionTokens * D;
    add(T, D, mlp);
    add(T, mlp, D);
  }
  const linearFlops = gemms.reduce((s, g) => s + 2 * g.M * g.K * g.N * g.count, 0);
  return { flops: linearFlops + mix, linearFlops, mixFlops: mix, gemms };
}
