/**
 * The SSD scan's forward on cpu and wasm in its chunked matrix form (Mamba-2, arXiv 2405.21060 §6),
 * each chunk of each group one `[q + N, q + N] × [q + N, W]` product on the backend's own BatchMatMul
 * (XNNPACK on wasm, on every thread), plus C Bᵀ. Letters of types.ts; W = (H/G)·P, the group's heads
 * side by side, so every head of a group shares one product. On wasm it runs only where the SIMD
 * recurrence (simd-scan.ts) cannot: P not a multiple of 4, or a heap tfjs keeps to itself.
 *
 * Within a chunk of tokens 0..q-1, with a_t = dt'_t A_h, α_t = exp(a_1 + … + a_t) (α_0 = 1) and
 * β_j = dt'_j / α_j, the decay from token j to t is α_t β_j / dt'_j, so with X̃ = β ∘ X and S' = e^{a_0} S
 * (S the state `[N, W]` entering the chunk):
 *
 *   [ (C Bᵀ) ∘ causal   C ] [ X̃ ]   rows < q:  y / α          (y = α ∘ (C Bᵀ ∘ causal) X̃ + α ∘ C S')
 *   [ Bᵀ                I ] [ S' ]   rows ≥ q:  S_next / α_last (S_next = α_last ∘ (Bᵀ X̃ + S'))
 *
 * A chunk with no state entering it (a sequence's first, without initialStates) drops the last N
 * columns and rows of S', and one whose next state nobody reads (a sequence's last, without
 * finalStates) drops the last N rows: on the shapes student's 256-token sequences (two chunks of 128)
 * that is 30% fewer multiply-adds than two full products. The dropped blocks are trailing, so the
 * kept sums are the same sums in the same order (the cpu backend's results do not change).
 *
 * α and 1/α stay inside float32 because a chunk ends before the decay after its first token passes
 * `MAX_DECAY` (a chunk may shrink to one token, where α = 1): the heads share one product, so instead
 * of per-head decay masks, each chunk is as long as the decay allows. On wasm α is taken relative to
 * the middle of the chunk's decay instead of its first token (α_t = e^{s_t − c}, c = s_last / 2, and
 * S' = e^{a_0 + c} S; c cancels in every α_t β_j), so α and β stay within e^{±MAX_DECAY} over a chunk
 * spanning twice the decay: the shapes student's strongly decaying heads cut its chunks to 32–85 tokens
 * on average (some of 1 or 2), each chunk two products and their set-up. cpu keeps the first token (the
 * rounding the trainer's byte tests pin). Decays are float64, in JavaScript; a chunk's next state is
 * written as the next chunk's float32 input straight from its product (each value e1·(α_last·s), as
 * from a float64 state); x, B and C are read in place, and y / α is written into the
 * output and scaled there. On cpu no other x-sized tensor exists; on wasm β ∘ x and the final
 * α ∘ y + D·x are the backend's broadcast kernels over all tokens at once, which run about 4× faster
 * than JavaScript loops (the shapes student's scan: 8% less time per call on one thread). The plain
 * recurrence (cpu.ts) is the reference, and still the backward.
 */
import { HostOps } from '@t2md/core';
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';
import { dtValue } from './cpu.js';
import { dimsOf, type SsdAttrs } from './types.js';

/** Most decay (−Σ a) a chunk may span after its first token: e^60 ≈ 1e26 keeps β·x far from float32's 3e38. */
export const MAX_DECAY = 60;

/**
 * Fewest tokens a chunk takes on wasm whatever `chunkSize` says (decay permitting): each chunk costs
 * two XNNPACK products, a weight packing and its JavaScript set-up, so longer chunks win until the q²
 * part grows (on a 2-core CPU, the shapes student's scan: 69 ms at 128 against 75 at 64 and 80 at
 * 256). The chunking changes only the rounding, not the maths; cpu keeps `chunkSize` (smaller chunk
 * tensors, a lower peak of memory).
 */
export const MIN_HOST_CHUNK = 128;

/**
 * Forward of `T2mdSsdScan` on cpu/wasm: y `[B, L, H, P]`, and finalStates `[B, H, P, N]` when
 * `a.returnFinal`. `inputs` are the kernel's (absent optional ones are [1] placeholders). Chunks hold
 * at most `a.chunkSize` tokens (on wasm at most max(`a.chunkSize`, MIN_HOST_CHUNK)).
 */
export function ssdForwardHost(backend: KernelBackend, inputs: Record<string, TensorInfo>, a: SsdAttrs): TensorInfo[] {
  const ops = new HostOps(backend);
  try {
    const d = dimsOf(inputs.x!.shape, inputs.B!.shape);
    const { batch: Bz, seqlen: L, nheads: H, headdim: P, ngroups: G, dstate: N } = d;
    const W = (H / G) * P;
    // small inputs copied (the heap may move as the chunks allocate); x, B and C are read in place
    const read = (name: string) => ops.values(inputs[name]!).slice();
    const init = a.hasInit ? read('initialStates') : undefined;
    const logE = stepDecays(read('dt'), read('A'), a.hasBias ? read('dtBias') : undefined, a, Bz * L, H);
    // chunks, and per token and head α and β (float32, as the products use them)
    const alpha = new Float32Array(Bz * L * H);
    const beta = new Float32Array(Bz * L * H);
    const chunks: { b: number; t0: number; q: number; e0: Float64Array }[] = [];
    const most = ops.kind === 'wasm' ? Math.max(a.chunkSize, MIN_HOST_CHUNK) : a.chunkSize;
    const centred = ops.kind === 'wasm'; // α relative to the middle of each chunk's decay
    const limit = centred ? 2 * MAX_DECAY : MAX_DECAY;
    for (let b = 0; b < Bz; b++) {
      // wasm: as many chunks as the longest allowed ones make, of even lengths (decay permitting)
      const even = ops.kind === 'wasm' ? chunkCount(logE.a, b * L, L, most, H, limit) : 0;
      for (let t0 = 0, k = 0; t0 < L; k++) {
        const at = even - k > 1 ? Math.ceil((L - t0) / (even - k)) : L - t0;
        const q = chunkLength(logE.a, b * L + t0, Math.min(most, at), H, limit);
        chunks.push({ b, t0, q, e0: chunkScales(logE, alpha, beta, b * L + t0, q, H, centred) });
        t0 += q;
      }
    }
    // wasm: X̃ = β ∘ x of every token in one Multiply (the backend's broadcast kernel: 2.6 ms against
    // 11 for a JavaScript loop over the student's x), whose rows the chunks copy; cpu multiplies each
    // chunk's rows (no other x-sized tensor). Either way each value is the float32 product β·x.
    const xt = ops.kind === 'wasm' ? ops.call('Multiply', { a: inputs.x!, b: ops.tensor([Bz, L, H, 1], beta) }) : undefined; // [B, L, H, P]
    // y / α goes straight into the output tensor, scaled at the end
    let y = ops.empty(inputs.x!.shape);
    const fin = a.returnFinal ? new Float32Array(Bz * H * P * N) : undefined;
    // per group [N, W]: S' = e^{a_0 + c} ∘ S of the chunk about to run, as float32 (the product's
    // input): the chunk before writes it straight from its output (no float64 state between chunks)
    const entering = Array.from({ length: G }, () => new Float32Array(N * W));
    for (const [i, c] of chunks.entries()) {
      const { b, t0 } = c;
      if (t0 === 0 && init) {
        for (const [g, sp] of entering.entries()) {
          forHeads(g, H / G, P, N, (h, col, n, p) => {
            sp[n * W + col] = c.e0[h]! * init[((b * H + h) * P + p) * N + n]!;
          });
        }
      }
      // a zero state entering, or a state nobody reads after, leaves its block out of the product
      const inState = t0 > 0 || init != null;
      const last = t0 + c.q === L;
      const outState = !last || fin != null;
      for (let g = 0; g < G; g++) {
        chunk(
          ops,
          { x: inputs.x!, xt, B: inputs.B!, C: inputs.C!, y, alpha, beta, sp: entering[g]!, e1: last ? undefined : chunks[i + 1]!.e0, fin },
          { b, t0, q: c.q, g, L, H, P, G, N, W, inState, outState },
        );
      }
    }
    if (xt) {
      // wasm: y ← α ∘ y + D·x as broadcast kernels (about twice as fast as finishOutputs; each product
      // and the sum rounded to float32, where finishOutputs rounds once: within the scan's tolerances)
      ops.free(xt);
      const ya = ops.call('Multiply', { a: y, b: ops.tensor([Bz, L, H, 1], alpha) });
      ops.free(y);
      y = ya;
      if (a.hasD) {
        const D = a.dPerChannel ? inputs.D! : ops.reshape(inputs.D!, [H, 1]); // [H, P] or [H, 1]
        const dx = ops.call('Multiply', { a: inputs.x!, b: D });
        y = ops.call('Add', { a: ya, b: dx });
        ops.free(ya, dx);
      }
    } else {
      finishOutputs(ops.values(y), ops.values(inputs.x!), alpha, a.hasD ? read('D') : undefined, a.dPerChannel, H, P);
    }
    if (a.hasZ) {
      const z = inputs.z!;
      y = ops.call('Multiply', { a: y, b: ops.call('Multiply', { a: z, b: ops.call('Sigmoid', { x: z }) }) }); // y·silu(z)
    }
    const outs = [ops.keep(y)];
    if (fin) outs.push(ops.keep(ops.tensor([Bz, H, P, N], fin)));
    return outs;
  } finally {
    ops.dispose();
  }
}

/** dt' (dtValue) and a = dt'·A per (token, head) of all sequences, float64. */
function stepDecays(dt: Float32Array, A: Float32Array, bias: Float32Array | undefined, a: SsdAttrs, tokens: number, H: number) {
  const dtp = new Float64Array(tokens * H);
  const la = new Float64Array(tokens * H);
  for (let i = 0; i < tokens * H; i++) {
    const h = i % H;
    const v = dtValue(dt[i]!, bias ? bias[h]! : 0, a);
    dtp[i] = v;
    la[i] = v * A[h]!;
  }
  return { dtp, a: la };
}

/** Tokens from `i0` (a token index of all sequences) the chunk takes: at most `most`, its decay after the first token at most `limit` in every head. */
function chunkLength(la: Float64Array, i0: number, most: number, H: number, limit: number): number {
  const sum = new Float64Array(H);
  for (let q = 1; q < most; q++) {
    for (let h = 0; h < H; h++) {
      sum[h]! -= la[(i0 + q) * H + h]!;
      if (sum[h]! > limit) return q;
    }
  }
  return most;
}

/**
 * How many chunks the sequence of `L` tokens from token `i0` takes when each is as long as
 * `chunkLength` allows. Its chunks are then cut to even lengths: the same number of products, but
 * (with MAX_DECAY cutting the shapes student's strongest heads at ~108 tokens) 86 + 85 + 85 instead
 * of 108 + 108 + 40 tokens of 256, 9% fewer multiply-adds (Σ (q + N)² is least for equal q).
 */
function chunkCount(la: Float64Array, i0: number, L: number, most: number, H: number, limit: number): number {
  let n = 0;
  for (let t0 = 0; t0 < L; n++) t0 += chunkLength(la, i0 + t0, Math.min(most, L - t0), H, limit);
  return n;
}

/**
 * α and β = dt'/α into `alpha`, `beta` for tokens i0..i0+q-1, and e^{a_0 + c} per head, with α_t =
 * e^{s_t − c} (s_t = a_1 + … + a_t): c = 0 (α from the first token), or `centred`, half the chunk's s_last.
 */
function chunkScales(
  logE: { dtp: Float64Array; a: Float64Array },
  alpha: Float32Array,
  beta: Float32Array,
  i0: number,
  q: number,
  H: number,
  centred: boolean,
): Float64Array {
  const e0 = new Float64Array(H);
  for (let h = 0; h < H; h++) {
    let c = 0;
    if (centred) {
      for (let t = 1; t < q; t++) c += logE.a[(i0 + t) * H + h]!;
      c /= 2;
    }
    e0[h] = Math.exp(logE.a[i0 * H + h]! + c);
    let s = 0;
    for (let t = 0; t < q; t++) {
      const i = (i0 + t) * H + h;
      if (t > 0) s += logE.a[i]!;
      alpha[i] = Math.exp(s - c);
      beta[i] = logE.dtp[i]! * Math.exp(c - s);
    }
  }
  return e0;
}

interface ChunkData {
  /** the kernel's x `[B, L, H, P]` */
  x: TensorInfo;
  /** wasm: X̃ = β ∘ x, `[B, L, H, P]` (else the chunk multiplies x's rows itself) */
  xt: TensorInfo | undefined;
  /** the kernel's B and C, `[B, L, G, N]` */
  B: TensorInfo;
  C: TensorInfo;
  /** the output, written y / α */
  y: TensorInfo;
  alpha: Float32Array;
  beta: Float32Array;
  /** the group's S' [N, W] entering the chunk; overwritten with the next chunk's when there is one */
  sp: Float32Array;
  /** e^{a_0 + c} per head of the sequence's next chunk, or undefined after its last */
  e1: Float64Array | undefined;
  /** finalStates `[B, H, P, N]`, written after a sequence's last chunk when asked for */
  fin: Float32Array | undefined;
}

interface ChunkAt {
  b: number;
  t0: number;
  q: number;
  g: number;
  L: number;
  H: number;
  P: number;
  G: number;
  N: number;
  W: number;
  /** a state enters the chunk (else it is zero: no C and S' blocks) */
  inState: boolean;
  /** the next state is read (else no Bᵀ and I rows) */
  outState: boolean;
}

/** One chunk of one group: C Bᵀ, then the stacked product; writes y / α and, when read, the next state. */
function chunk(ops: HostOps, s: ChunkData, c: ChunkAt): void {
  const { b, t0, q, g, L, H, P, G, N, W, inState, outState } = c;
  const hpg = H / G;
  const K = q + (inState ? N : 0); // columns of the stacked matrix: tokens, then the entering state
  const R = q + (outState ? N : 0); // its rows: y / α, then the next state
  const row = (t: number) => ((b * L + t0 + t) * G + g) * N; // B and C of token t
  // With one group (as in the shapes student) a chunk's rows of C, X̃ and y are single runs, each
  // moved with one heap copy (ops.copier) instead of a set per row, which on wasm also clones its
  // source first (those sets were a quarter of the chunks' JavaScript time; the scan's CPU time on one
  // thread drops 5%).
  const one = G === 1;
  const Ct = ops.empty([1, q, N]); // every value written below
  const Bt = ops.empty([1, N, q]);
  {
    const [cv, bv, Cm, Bm] = [ops.values(Ct), ops.values(Bt), ops.values(s.C), ops.values(s.B)];
    const copyC = ops.copier(Cm, cv);
    if (one) copyC(row(0), 0, q * N);
    for (let t = 0; t < q; t++) {
      const r = row(t);
      if (!one) copyC(r, t * N, N);
      for (let n = 0; n < N; n++) bv[n * q + t] = Bm[r + n]!;
    }
  }
  const CB = ops.matMul(Ct, Bt); // [1, q, q]
  const Am = ops.tensor([1, R, K]); // [[C Bᵀ ∘ causal, C], [Bᵀ, I]]
  const Xs = ops.empty([1, K, W]); // [X̃; S']
  {
    const [cb, am, xs, cv, bv, x] = [ops.values(CB), ops.values(Am), ops.values(Xs), ops.values(Ct), ops.values(Bt), ops.values(s.x)];
    const xt = s.xt == null ? undefined : ops.values(s.xt);
    // heap-to-heap row copies (ops.copier: no clone of each source row, no garbage)
    const [copyCB, copyC, copyB] = [ops.copier(cb, am), ops.copier(cv, am), ops.copier(bv, am)];
    const copyX = xt ? ops.copier(xt, xs) : undefined;
    if (copyX && one) copyX((b * L + t0) * W, 0, q * W);
    for (let t = 0; t < q; t++) {
      copyCB(t * q, t * K, t + 1);
      if (inState) copyC(t * N, t * K + q, N);
      if (copyX && one) continue;
      if (copyX) {
        copyX(((b * L + t0 + t) * H + g * hpg) * P, t * W, W); // the group's heads are adjacent
        continue;
      }
      for (let hl = 0; hl < hpg; hl++) {
        const i = (b * L + t0 + t) * H + g * hpg + hl; // (token, head)
        const w = s.beta[i]!;
        for (let p = 0; p < P; p++) xs[t * W + hl * P + p] = w * x[i * P + p]!; // X̃ = β ∘ x
      }
    }
    if (outState) {
      for (let n = 0; n < N; n++) {
        copyB(n * q, (q + n) * K, q);
        if (inState) am[(q + n) * K + q + n] = 1;
      }
    }
    if (inState) xs.set(s.sp, q * W); // S' (a JavaScript array: one copy)
  }
  const Out = ops.matMul(Am, Xs); // [1, R, W]
  const [out, y] = [ops.values(Out), ops.values(s.y)];
  const copyY = ops.copier(out, y);
  if (one) copyY(0, (b * L + t0) * W, q * W);
  else for (let t = 0; t < q; t++) copyY(t * W, (b * L + t0 + t) * H * P + g * W, W); // the group's heads are adjacent
  if (!outState) {
    ops.free(Ct, Bt, CB, Am, Xs, Out);
    return;
  }
  // S_next = α_last ∘ (rows ≥ q): the next chunk's S' = e1 ∘ S_next (float64 products, as the state
  // was kept before: each f32·f32 product exact, one rounding), or the final state
  const { sp, e1, fin } = s;
  for (let hl = 0; hl < hpg; hl++) {
    const h = g * hpg + hl;
    const last = s.alpha[(b * L + t0 + q - 1) * H + h]!;
    for (let n = 0; n < N; n++) {
      const [o, r] = [n * W + hl * P, (q + n) * W + hl * P];
      if (e1) {
        const e = e1[h]!;
        for (let p = 0; p < P; p++) sp[o + p] = e * (last * out[r + p]!);
      } else if (fin) {
        for (let p = 0; p < P; p++) fin[((b * H + h) * P + p) * N + n] = last * out[r + p]!;
      }
    }
  }
  ops.free(Ct, Bt, CB, Am, Xs, Out);
}

/** y ← α ∘ y + D·x over all tokens (y held y / α), in place. */
function finishOutputs(
  y: Float32Array,
  x: Float32Array,
  alpha: Float32Array,
  D: Float32Array | undefined,
  perChannel: boolean,
  H: number,
  P: number,
): void {
  // D per channel [H, P], per head [H] (broadcast over P), or none
  const Dc = new Float64Array(H * P);
  if (D) for (let i = 0; i < H * P; i++) Dc[i] = perChannel ? D[i]! : D[Math.floor(i / P)]!;
  for (let i = 0; i < alpha.length; i++) {
    const al = alpha[i]!;
    const o = i * P;
    const dOff = (i % H) * P;
    for (let p = 0; p < P; p++) y[o + p] = al * y[o + p]! + Dc[dOff + p]! * x[o + p]!;
  }
}

/** Calls f(head, column in the group's W, n, p) for every state entry of group g. */
function forHeads(g: number, hpg: number, P: number, N: number, f: (h: number, col: number, n: number, p: number) => void): void {
  for (let hl = 0; hl < hpg; hl++) for (let p = 0; p < P; p++) for (let n = 0; n < N; n++) f(g * hpg + hl, hl * P + p, n, p);
}
