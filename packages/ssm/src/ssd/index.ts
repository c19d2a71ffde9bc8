import { InputError } from '@t2md/core';
import { concat, engine, type NamedAttrMap, slice, type Tensor, tidy, zeros } from '@tensorflow/tfjs-core';
import { registerSsdKernels, SSD_SCAN } from './kernels.js';
import { ssdBindingLimit } from './limit.js';
import type { SsdScanInputs, SsdScanOptions, SsdScanResult } from './types.js';
import { validateSsd } from './validate.js';

export { registerSsdKernels, SSD_SCAN, SSD_SCAN_GRAD } from './kernels.js';
export {
  SSD_GEMM_TILES,
  SSD_VARIANTS,
  type SsdGemmTile,
  type SsdScanInputs,
  type SsdScanOptions,
  type SsdScanResult,
  type SsdVariant,
} from './types.js';
export { ssdDefaultGemmTile, ssdDefaultVariant } from './validate.js';

/**
 * Mamba-2's SSD scan (semantics of mamba_ssm's `mamba_chunk_scan_combined`), one fused chunked kernel
 * per backend, differentiable in every float input:
 *
 *   dt' = clamp(softplus?(dt + dtBias), dtLimit)
 *   state_t = exp(dt'_t A) state_{t-1} + dt'_t x_t B_tᵀ      (state [P, N], per head; head h reads group floor(h / (H/G)))
 *   y_t = state_t C_t + D x_t;  y *= silu(z) when z is given
 *
 * Shapes: x [B, L, H, P], dt [B, L, H], A [H], B and C [B, L, G, N], D [H] or [H, P], z [B, L, H, P],
 * dtBias [H], initialStates and finalStates [B, H, P, N]. Any seqlen works (not only multiples of
 * chunkSize). Bad shapes or dtypes throw an InputError naming the argument and both shapes.
 */
export function ssdScan(inputs: SsdScanInputs, options: SsdScanOptions = {}): SsdScanResult {
  const attrs = validateSsd(inputs, options);
  registerSsdKernels();
  const per = sequencesPerCall(inputs, attrs.chunkSize as number);
  const batch = inputs.x.shape[0];
  if (per < batch) return splitOverBatch(inputs, options, per);
  return tidy(() => {
    // absent optional inputs travel as [1] placeholders: tfjs saves inputs for the gradient by name
    const hole = (t: Tensor | undefined) => t ?? zeros([1]);
    const [y, finalStates] = engine().runKernel(
      SSD_SCAN,
      {
        x: inputs.x,
        dt: inputs.dt,
        A: inputs.A,
        B: inputs.B,
        C: inputs.C,
        D: hole(inputs.D),
        z: hole(inputs.z),
        dtBias: hole(inputs.dtBias),
        initialStates: hole(inputs.initialStates),
      },
      attrs as unknown as NamedAttrMap,
    ) as Tensor[];
    return options.returnFinalStates ? { y, finalStates } : { y };
  });
}

/**
 * WebGPU binds each buffer whole, and one binding is capped (2 GiB on the H100): the per-chunk state
 * buffer [B, L/chunk + 1, H, P, N] must fit. Returns how many sequences one kernel call can take.
 */
function sequencesPerCall(inputs: SsdScanInputs, chunkSize: number): number {
  const limit = ssdBindingLimit();
  if (!Number.isFinite(limit)) return Number.POSITIVE_INFINITY;
  const [, L, H, P] = inputs.x.shape;
  const N = inputs.B.shape[3]!;
  const bytes = (Math.ceil(L / chunkSize) + 1) * H * P * N * 4;
  if (bytes > limit) {
    throw new InputError(
      `ssdScan: one sequence of ${L} tokens needs a ${(bytes / 2 ** 30).toFixed(2)} GiB chunk-state buffer with chunkSize ${chunkSize}, over this adapter's ${(limit / 2 ** 30).toFixed(2)} GiB binding limit; use a larger chunkSize.`,
    );
  }
  return Math.max(1, Math.floor(limit / bytes));
}

/** Runs ssdScan on slices of the batch that fit one binding each and concatenates (gradients flow through). */
function splitOverBatch(inputs: SsdScanInputs, options: SsdScanOptions, per: number): SsdScanResult {
  return tidy(() => {
    const batch = inputs.x.shape[0];
    const ys: Tensor[] = [];
    const finals: Tensor[] = [];
    const part = (t: Tensor | undefined, b0: number, n: number) => (t == null ? undefined : slice(t, b0, n));
    for (let b0 = 0; b0 < batch; b0 += per) {
      const n = Math.min(per, batch - b0);
      const r = ssdScan(
        {
          ...inputs,
          x: part(inputs.x, b0, n)!,
          dt: part(inputs.dt, b0, n)!,
          B: part(inputs.B, b0, n)!,
          C: part(inputs.C, b0, n)!,
          z: part(inputs.z, b0, n),
          initialStates: part(inputs.initialStates, b0, n),
        },
        options,
      );
      ys.push(r.y);
      if (r.finalStates) finals.push(r.finalStates);
    }
    const y = concat(ys, 0);
    return options.returnFinalStates ? { y, finalStates: concat(finals, 0) } : { y };
  });
}
