/**
 * The selective scan as plain loops over typed arrays: the cpu and wasm kernels, and the float64
 * forward used by the finite-difference test. Letters: B batch, D dim, G ngroups, N dstate, L seqlen.
 * Accumulation is in float64 (JavaScript numbers); inputs and outputs are float32.
 */

/** Sizes of one call. `D` is the channel count (Mamba's d_inner), not the skip vector. */
export interface ScanDims {
  batch: number;
  dim: number;
  dstate: number;
  seqlen: number;
  ngroups: number;
}

/** Inputs of the fused forward, flat row-major: u, delta, z [B, D, L]; A [D, N]; B, C [B, G, N, L]; D, deltaBias [D]. */
export interface ForwardArrays {
  u: ArrayLike<number>;
  delta: ArrayLike<number>;
  A: ArrayLike<number>;
  B: ArrayLike<number>;
  C: ArrayLike<number>;
  D: ArrayLike<number>;
  deltaBias: ArrayLike<number>;
  z?: ArrayLike<number>;
}

/** softplus with PyTorch's threshold: x itself above 20, where log1p(exp(x)) rounds to x. */
export function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** Chunk length between stored states in the backward recomputation (bounds its scratch to CHUNK·N). */
const CHUNK = 64;

/**
 * y = (Σ_n x_t[n] C_t[n] + D u_t) · silu(z_t), x_t = exp(δ_t A) x_{t-1} + δ_t B_t u_t, δ = softplus?(delta + deltaBias).
 * Returns y [B, D, L] and the last state [B, D, N], in float64.
 */
export function selectiveScanForward(
  a: ForwardArrays,
  dims: ScanDims,
  deltaSoftplus: boolean,
): { y: Float64Array; lastState: Float64Array } {
  const { batch, dim, dstate: N, seqlen: L, ngroups: G } = dims;
  const perGroup = dim / G;
  const y = new Float64Array(batch * dim * L);
  const lastState = new Float64Array(batch * dim * N);
  const x = new Float64Array(N);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < dim; d++) {
      const g = Math.floor(d / perGroup);
      const row = (b * dim + d) * L; // [B, D, L] row of this channel
      const bc = (b * G + g) * N * L; // [B, G, N, L] block of this group
      x.fill(0);
      for (let t = 0; t < L; t++) {
        let dt = a.delta[row + t] + a.deltaBias[d];
        if (deltaSoftplus) dt = softplus(dt);
        const u = a.u[row + t];
        let acc = 0;
        for (let n = 0; n < N; n++) {
          x[n] = Math.exp(dt * a.A[d * N + n]) * x[n] + dt * a.B[bc + n * L + t] * u;
          acc += x[n] * a.C[bc + n * L + t];
        }
        let out = acc + a.D[d] * u;
        if (a.z) {
          const zv = a.z[row + t];
          out *= zv * sigmoid(zv);
        }
        y[row + t] = out;
      }
      lastState.set(x, (b * dim + d) * N);
    }
  }
  return { y, lastState };
}

/** Inputs of the core backward: dt is δ after bias and softplus; gy the upstream gradient of the un-gated y. */
export interface BackwardArrays {
  u: ArrayLike<number>;
  dt: ArrayLike<number>;
  A: ArrayLike<number>;
  B: ArrayLike<number>;
  C: ArrayLike<number>;
  gy: ArrayLike<number>;
  gLast: ArrayLike<number>;
}

/** Gradients of the core scan ys_t = Σ_n x_t[n] C_t[n] (no D, no gate), plus ys itself (needed for dz). */
export interface BackwardValues {
  gdt: Float32Array; // [B, D, L]
  gu: Float32Array; // [B, D, L]
  ys: Float32Array; // [B, D, L]
  gA: Float32Array; // [D, N]
  gB: Float32Array; // [B, G, N, L]
  gC: Float32Array; // [B, G, N, L]
}

/**
 * Reverse-time adjoint of the scan. With h_t = ∂loss/∂x_t = gy_t C_t + a_{t+1} h_{t+1} (h after the
 * last step seeded by gLast), a_t = exp(dt_t A):
 * gdt_t = Σ_n h_t (A a_t x_{t-1} + B_t u_t), gu_t = Σ_n h_t dt_t B_t, gA = Σ_t h_t x_{t-1} dt_t a_t,
 * gB_t = Σ_d h_t dt_t u_t, gC_t = Σ_d gy_t x_t. States are recomputed chunk by chunk from stored
 * chunk-start states, never recovered by dividing by a_t (which underflows to 0 under strong decay).
 */
export function selectiveScanBackward(a: BackwardArrays, dims: ScanDims): BackwardValues {
  const { batch, dim, dstate: N, seqlen: L, ngroups: G } = dims;
  const perGroup = dim / G;
  const nChunks = Math.ceil(L / CHUNK);
  const out: BackwardValues = {
    gdt: new Float32Array(batch * dim * L),
    gu: new Float32Array(batch * dim * L),
    ys: new Float32Array(batch * dim * L),
    gA: new Float32Array(dim * N),
    gB: new Float32Array(batch * G * N * L),
    gC: new Float32Array(batch * G * N * L),
  };
  const gA = new Float64Array(dim * N);
  const gB = new Float64Array(batch * G * N * L);
  const gC = new Float64Array(batch * G * N * L);
  const starts = new Float64Array(nChunks * N); // state entering each chunk
  const xs = new Float64Array((CHUNK + 1) * N); // states of one chunk: xs[j] = x before step j
  const carry = new Float64Array(N);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < dim; d++) {
      const g = Math.floor(d / perGroup);
      const row = (b * dim + d) * L;
      const bc = (b * G + g) * N * L;
      // Forward: store chunk-start states.
      const x = xs.subarray(0, N);
      x.fill(0);
      for (let t = 0; t < L; t++) {
        if (t % CHUNK === 0) starts.set(x, (t / CHUNK) * N);
        const dt = a.dt[row + t];
        const u = a.u[row + t];
        for (let n = 0; n < N; n++) x[n] = Math.exp(dt * a.A[d * N + n]) * x[n] + dt * a.B[bc + n * L + t] * u;
      }
      // Backward, chunk by chunk from the end.
      for (let n = 0; n < N; n++) carry[n] = a.gLast[(b * dim + d) * N + n];
      for (let c = nChunks - 1; c >= 0; c--) {
        const t0 = c * CHUNK;
        const len = Math.min(CHUNK, L - t0);
        xs.set(starts.subarray(c * N, (c + 1) * N), 0);
        for (let j = 0; j < len; j++) {
          const t = t0 + j;
          const dt = a.dt[row + t];
          const u = a.u[row + t];
          let acc = 0;
          for (let n = 0; n < N; n++) {
            const v = Math.exp(dt * a.A[d * N + n]) * xs[j * N + n] + dt * a.B[bc + n * L + t] * u;
            xs[(j + 1) * N + n] = v;
            acc += v * a.C[bc + n * L + t];
          }
          out.ys[row + t] = acc;
        }
        for (let j = len - 1; j >= 0; j--) {
          const t = t0 + j;
          const dt = a.dt[row + t];
          const u = a.u[row + t];
          const gy = a.gy[row + t];
          let gdt = 0;
          let gu = 0;
          for (let n = 0; n < N; n++) {
            const An = a.A[d * N + n];
            const decay = Math.exp(dt * An);
            const Bv = a.B[bc + n * L + t];
            const h = carry[n] + gy * a.C[bc + n * L + t];
            const xPrev = xs[j * N + n];
            gdt += h * (An * decay * xPrev + Bv * u);
            gu += h * dt * Bv;
            gA[d * N + n] += h * xPrev * dt * decay;
            gB[bc + n * L + t] += h * dt * u;
            gC[bc + n * L + t] += gy * xs[(j + 1) * N + n];
            carry[n] = decay * h;
          }
          out.gdt[row + t] = gdt;
          out.gu[row + t] = gu;
        }
      }
    }
  }
  out.gA.set(gA);
  out.gB.set(gB);
  out.gC.set(gC);
  return out;
}
