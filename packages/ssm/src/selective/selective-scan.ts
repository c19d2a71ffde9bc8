import { assertFloat, check, fmtShape, InputError, registerKernelsOnce } from '@t2md/core';
import type { Tensor } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { SELECTIVE_SCAN, type SelectiveScanAttrs, selectiveScanGrad, selectiveScanKernels } from './kernels.js';

/**
 * Inputs of the selective scan (Mamba-1, mamba_ssm's `selective_scan_fn` with real A).
 * Letters: B batch, D dim, G ngroups, N dstate, L seqlen.
 */
export interface SelectiveScanInputs {
  /** [B, D, L] */
  u: Tensor;
  /** [B, D, L] step sizes before deltaBias and softplus */
  delta: Tensor;
  /** [D, N] (real; negative for a decaying state) */
  A: Tensor;
  /** [B, N, L] or [B, G, N, L]; channel d uses group floor(d / (D / G)) */
  B: Tensor;
  /** like B */
  C: Tensor;
  /** [D] skip connection, y += D u */
  D?: Tensor;
  /** [B, D, L] gate, y *= silu(z) */
  z?: Tensor;
  /** [D] added to delta before softplus */
  deltaBias?: Tensor;
}

export interface SelectiveScanOptions {
  /** δ = softplus(delta + deltaBias) when true (default false, as in mamba_ssm). */
  deltaSoftplus?: boolean;
  /** Also return the state after the last step, [B, D, N] (default false). */
  returnLastState?: boolean;
  /** WebGPU forward chunk length (work items are batch·dim·chunks); default chosen from the shape. */
  chunkSize?: number;
}

export interface SelectiveScanResult {
  /** [B, D, L] */
  y: Tensor;
  /** [B, D, N], when `returnLastState` */
  lastState?: Tensor;
}

/** Registers the selective-scan kernels (cpu, wasm, webgpu) and their gradient; idempotent. */
export function registerSelectiveScanKernels(): void {
  registerKernelsOnce(selectiveScanKernels, [selectiveScanGrad]);
}

/** Checks every input against the contract; returns the sizes. Throws InputError naming the argument and shapes. */
export function checkSelectiveScanInputs(inputs: SelectiveScanInputs): {
  batch: number;
  dim: number;
  seqlen: number;
  ngroups: number;
  dstate: number;
} {
  check(inputs != null && typeof inputs === 'object', 'selectiveScan needs an object {u, delta, A, B, C, D?, z?, deltaBias?}.');
  const { u, delta, A, B, C, D, z, deltaBias } = inputs;
  for (const [name, t] of [
    ['u', u],
    ['delta', delta],
    ['A', A],
    ['B', B],
    ['C', C],
  ] as const) {
    check(t != null, `${name} is missing: selectiveScan needs u, delta, A, B and C.`);
    assertFloat(name, t);
  }
  check(u.rank === 3 && u.size > 0, () => `u must have rank 3 [batch, dim, seqlen] with no zero size, got shape ${fmtShape(u.shape)}.`);
  const [batch, dim, seqlen] = u.shape as number[];
  const like = (name: string, t: Tensor) =>
    check(
      t.rank === 3 && t.shape.every((s, i) => s === u.shape[i]),
      () => `${name} must have the shape of u ${fmtShape(u.shape)} ([batch, dim, seqlen]), got ${fmtShape(t.shape)}.`,
    );
  like('delta', delta);
  check(
    B.rank === 3 || B.rank === 4,
    () => `B must have rank 3 [batch, dstate, seqlen] or 4 [batch, ngroups, dstate, seqlen], got shape ${fmtShape(B.shape)}.`,
  );
  const ngroups = B.rank === 4 ? (B.shape[1] as number) : 1;
  const dstate = B.shape[B.rank - 2] as number;
  check(
    B.shape[0] === batch && B.shape[B.rank - 1] === seqlen,
    () => `B must have batch ${batch} and seqlen ${seqlen} like u ${fmtShape(u.shape)}, got B ${fmtShape(B.shape)}.`,
  );
  check(ngroups > 0 && dstate > 0, () => `B must have no zero size, got ${fmtShape(B.shape)}.`);
  check(
    dim % ngroups === 0,
    () =>
      `B has ngroups ${ngroups}, which does not divide dim ${dim} of u ${fmtShape(u.shape)}; B ${fmtShape(B.shape)} needs a number of groups that divides dim.`,
  );
  check(
    C.rank === B.rank && C.shape.every((s, i) => s === B.shape[i]),
    () => `C must have the shape of B ${fmtShape(B.shape)}, got ${fmtShape(C.shape)}.`,
  );
  check(
    A.rank === 2 && A.shape[0] === dim && A.shape[1] === dstate,
    () =>
      `A must have shape [${dim}, ${dstate}] ([dim, dstate] from u ${fmtShape(u.shape)} and B ${fmtShape(B.shape)}), got ${fmtShape(A.shape)}.`,
  );
  for (const [name, t] of [
    ['D', D],
    ['deltaBias', deltaBias],
  ] as const) {
    if (t == null) continue;
    assertFloat(name, t);
    check(
      t.rank === 1 && t.shape[0] === dim,
      () => `${name} must have shape [${dim}] ([dim] of u ${fmtShape(u.shape)}), got ${fmtShape(t.shape)}.`,
    );
  }
  if (z != null) {
    assertFloat('z', z);
    like('z', z);
  }
  return { batch, dim, seqlen, ngroups, dstate };
}

function checkOptions(options: SelectiveScanOptions): Required<Omit<SelectiveScanOptions, 'chunkSize'>> & { chunkSize: number } {
  check(options != null && typeof options === 'object', 'selectiveScan options must be an object.');
  const { deltaSoftplus = false, returnLastState = false, chunkSize } = options;
  check(typeof deltaSoftplus === 'boolean', () => `deltaSoftplus must be a boolean, got ${String(deltaSoftplus)}.`);
  check(typeof returnLastState === 'boolean', () => `returnLastState must be a boolean, got ${String(returnLastState)}.`);
  if (chunkSize != null && !(Number.isInteger(chunkSize) && chunkSize >= 1 && chunkSize <= 65536)) {
    throw new InputError(`chunkSize must be an integer in [1, 65536], got ${String(chunkSize)}.`);
  }
  return { deltaSoftplus, returnLastState, chunkSize: chunkSize ?? 0 };
}

/**
 * The selective scan of Mamba-1 (semantics of mamba_ssm's `selective_scan_fn`, real A), one fused
 * kernel on every backend, differentiable in every float input:
 *   δ = softplus?(delta + deltaBias); x_t = exp(δ_t A) x_{t-1} + δ_t B_t u_t; y_t = ⟨x_t, C_t⟩ + D u_t;
 *   y *= silu(z).
 * On WebGPU a chunked parallel scan: chunk summaries, a pass over chunk boundaries, then each chunk
 * recomputed from its entering state; only boundary states are stored.
 *
 * ```ts
 * const { y, lastState } = selectiveScan({ u, delta, A, B, C, D, z, deltaBias }, { deltaSoftplus: true, returnLastState: true });
 * ```
 */
export function selectiveScan(inputs: SelectiveScanInputs, options: SelectiveScanOptions = {}): SelectiveScanResult {
  const { batch, dim, seqlen, ngroups, dstate } = checkSelectiveScanInputs(inputs);
  const { deltaSoftplus, returnLastState, chunkSize } = checkOptions(options);
  registerSelectiveScanKernels();
  return tf.tidy(() => {
    const as4d = (t: Tensor) => (t.rank === 4 ? t : tf.reshape(t, [batch, ngroups, dstate, seqlen])); // [B, G, N, L]
    const attrs: SelectiveScanAttrs = { deltaSoftplus, hasZ: inputs.z != null, chunkSize, returnLast: returnLastState };
    const [y, lastState] = tf.engine().runKernel(
      SELECTIVE_SCAN,
      {
        u: inputs.u,
        delta: inputs.delta,
        A: inputs.A,
        B: as4d(inputs.B),
        C: as4d(inputs.C),
        // Absent D and deltaBias are zeros; an absent z is a placeholder the kernels never read. All eight
        // are passed because tfjs saves a gradient's inputs by name and cannot save a missing one.
        D: inputs.D ?? tf.zeros([dim]),
        z: inputs.z ?? tf.zeros([1]),
        deltaBias: inputs.deltaBias ?? tf.zeros([dim]),
      },
      attrs as unknown as tf.NamedAttrMap,
    ) as Tensor[];
    return returnLastState ? { y, lastState } : { y };
  }) as SelectiveScanResult;
}
