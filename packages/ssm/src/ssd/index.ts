import { engine, type NamedAttrMap, type Tensor, tidy, zeros } from '@tensorflow/tfjs-core';
import { registerSsdKernels, SSD_SCAN } from './kernels.js';
import type { SsdScanInputs, SsdScanOptions, SsdScanResult } from './types.js';
import { validateSsd } from './validate.js';

export { registerSsdKernels, SSD_SCAN, SSD_SCAN_GRAD } from './kernels.js';
export type { SsdScanInputs, SsdScanOptions, SsdScanResult } from './types.js';

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
