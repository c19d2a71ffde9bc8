import { relErr } from '@t2md/core/testing';

/** What a test read back for one ssdScan case, flat row-major: x [B, L, H, P], dt [B, L, H], A [H]. */
export interface SsdGradContext {
  x: ArrayLike<number>;
  dt: ArrayLike<number>;
  A: ArrayLike<number>;
  dtBias?: ArrayLike<number>;
  /** The reference's gradients of x and dt. */
  dx: ArrayLike<number>;
  ddt: ArrayLike<number>;
  H: number;
  P: number;
  dtSoftplus: boolean;
}

/**
 * dA [H] and ddtBias [H] are sums of B·L signed per-token terms, so a random loss can make them cancel to
 * almost nothing, and a relative error against the sum then measures the cancellation, not the kernel.
 * This is Σ_t |term_t| per head, the size a float32 sum of those terms is accurate to:
 * - ddtBias_h = Σ_t ddt_t;
 * - dA_h = Σ_t dt'_t·da_t with da_t = ∂loss/∂(dt'_t·A_h). x enters only as x·dt' (D and z add their own
 *   paths, which only enlarge the bound), so dt'_t·ddt'_t = A_h·dt'_t·da_t + Σ_p x·dx, where ddt' is the
 *   gradient of the softplus output dt'.
 */
export function summandScale(key: 'A' | 'dtBias', s: SsdGradContext): Float64Array {
  const { H, P } = s;
  const out = new Float64Array(H);
  for (let i = 0; i < s.dt.length; i++) {
    const h = i % H;
    if (key === 'dtBias') {
      out[h] += Math.abs(s.ddt[i]);
      continue;
    }
    const raw = s.dt[i] + (s.dtBias ? s.dtBias[h] : 0);
    const dtp = s.dtSoftplus ? Math.log1p(Math.exp(-Math.abs(raw))) + Math.max(raw, 0) : raw;
    const slope = s.dtSoftplus ? 1 / (1 + Math.exp(-raw)) : 1;
    let xdx = 0;
    for (let p = 0; p < P; p++) xdx += s.x[i * P + p] * s.dx[i * P + p];
    out[h] += (Math.abs((dtp * s.ddt[i]) / slope) + Math.abs(xdx)) / Math.abs(s.A[h]);
  }
  return out;
}

/**
 * The error of gradient `key` against the reference: relErr, except for the per-head sums dA and ddtBias,
 * whose error is measured against max(|reference|, Σ|terms|) per head (see summandScale).
 */
export function ssdGradError(key: string, got: ArrayLike<number>, ref: ArrayLike<number>, s: SsdGradContext): number {
  if (key !== 'A' && key !== 'dtBias') return relErr(got, ref);
  const scale = summandScale(key, s);
  let num = 0;
  let den = 0;
  for (let h = 0; h < ref.length; h++) {
    num += (got[h] - ref[h]) ** 2;
    den += Math.max(Math.abs(ref[h]), scale[h]) ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

/**
 * The bound a test holds ssdGradError to: 1e-3 for relErr; 2e-5 of Σ|terms| for dA and ddtBias, which a float32
 * sum stays well inside (≈1e-6 measured at chunk 128) while a wrong kernel (typically |sum| ≈ Σ|terms| / √(B·L))
 * still shows.
 */
export function ssdGradBound(key: string): number {
  return key === 'A' || key === 'dtBias' ? 2e-5 : 1e-3;
}
