/**
 * A float64 PixArt-α forward in plain JavaScript, written from the method (DiT's adaLN blocks with
 * PixArt's adaLN-single, cross-attention and T2I final layer) and PixArt's state-dict names, sharing no
 * code with the model under test: the reference that `createDiT` on every backend is held to. Test
 * support, not exported from the package (the accuracy test and `bench/pixart-parity.ts` import it).
 *
 * Everything is row-major `Float64Array`. Shapes: N batch, C channels, H W pixels, p patch, T tokens
 * (row-major over the (H/p)×(W/p) grid), D width, Lc caption tokens, Dc caption width, Dh head dim.
 * The ops a backend implements by kernels (the timestep features, linear, SiLU, GELU, the modulated
 * LayerNorm, attention) go through a `PixArtOps` table, so a diagnosis can swap one of them for a
 * backend's kernel and see that op's share of the whole-model error.
 */

/** The sizes of a PixArt-style model (a DiTConfig's fields, all given). */
export interface PixArtSizes {
  inChannels: number;
  patchSize: number;
  hiddenSize: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  captionChannels: number;
  captionLength: number;
  learnSigma: boolean;
}

/** A weight: its PyTorch shape and values. */
export interface Param {
  shape: number[];
  data: Float64Array;
}

/** The ops a backend runs as kernels; each may return a promise (a kernel read back from a device). */
export interface PixArtOps {
  /** `[N]` → `[N, dim]`: [cos(t·ω_k), sin(t·ω_k)], ω_k = 10000^(−k/(dim/2)). */
  timestepFeatures(t: Float64Array, dim: number): Float64Array | Promise<Float64Array>;
  /** x `[R, in]`, w `[out, in]`, b `[out]` → `[R, out]`. */
  linear(x: Float64Array, w: Param, b: Param): Float64Array | Promise<Float64Array>;
  silu(x: Float64Array): Float64Array | Promise<Float64Array>;
  /** GELU with the tanh approximation (PyTorch's `approximate='tanh'`). */
  gelu(x: Float64Array): Float64Array | Promise<Float64Array>;
  /** x `[N, T, D]`, shift and scale `[N, D]` → LayerNorm(x, no affine, eps 1e-6)·(1 + scale) + shift. */
  modulatedNorm(x: Float64Array, shift: Float64Array, scale: Float64Array, N: number, D: number): Float64Array | Promise<Float64Array>;
  /**
   * softmax(q kᵀ/√Dh) v over keys whose `keyMask` entry is 1 (all when null).
   * q `[N, H, Lq, Dh]`, k and v `[N, H, Lk, Dh]`, keyMask `[N, Lk]` → `[N, H, Lq, Dh]`.
   */
  attention(
    q: Float64Array,
    k: Float64Array,
    v: Float64Array,
    dims: { N: number; H: number; Lq: number; Lk: number; Dh: number },
    keyMask: Uint8Array | null,
  ): Float64Array | Promise<Float64Array>;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** The float64 ops: the method's formulas evaluated in double precision. */
export const F64_OPS: PixArtOps = {
  timestepFeatures(t, dim) {
    const half = dim / 2;
    const out = new Float64Array(t.length * dim);
    for (let n = 0; n < t.length; n++) {
      for (let k = 0; k < half; k++) {
        const a = t[n] * Math.exp((-Math.log(10000) * k) / half);
        out[n * dim + k] = Math.cos(a);
        out[n * dim + half + k] = Math.sin(a);
      }
    }
    return out;
  },
  linear(x, w, b) {
    const [out, inF] = w.shape as [number, number];
    const R = x.length / inF;
    const y = new Float64Array(R * out);
    for (let r = 0; r < R; r++) {
      for (let o = 0; o < out; o++) {
        let s = b.data[o];
        for (let i = 0; i < inF; i++) s += x[r * inF + i] * w.data[o * inF + i];
        y[r * out + o] = s;
      }
    }
    return y;
  },
  silu: (x) => x.map((v) => v / (1 + Math.exp(-v))),
  gelu: (x) => x.map((v) => 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)))),
  modulatedNorm(x, shift, scale, N, D) {
    const rows = x.length / D;
    const T = rows / N;
    const y = new Float64Array(x.length);
    for (let r = 0; r < rows; r++) {
      const n = Math.floor(r / T);
      let mean = 0;
      for (let d = 0; d < D; d++) mean += x[r * D + d];
      mean /= D;
      let v = 0;
      for (let d = 0; d < D; d++) v += (x[r * D + d] - mean) ** 2;
      const rstd = 1 / Math.sqrt(v / D + 1e-6);
      for (let d = 0; d < D; d++) y[r * D + d] = (x[r * D + d] - mean) * rstd * (1 + scale[n * D + d]) + shift[n * D + d];
    }
    return y;
  },
  attention(q, k, v, { N, H, Lq, Lk, Dh }, keyMask) {
    const o = new Float64Array(N * H * Lq * Dh);
    const s = new Float64Array(Lk);
    const scale = 1 / Math.sqrt(Dh);
    for (let n = 0; n < N; n++) {
      for (let h = 0; h < H; h++) {
        const kv = (n * H + h) * Lk * Dh;
        for (let i = 0; i < Lq; i++) {
          const qi = ((n * H + h) * Lq + i) * Dh;
          let m = Number.NEGATIVE_INFINITY;
          for (let j = 0; j < Lk; j++) {
            if (keyMask != null && keyMask[n * Lk + j] === 0) continue;
            let dot = 0;
            for (let d = 0; d < Dh; d++) dot += q[qi + d] * k[kv + j * Dh + d];
            s[j] = dot * scale;
            m = Math.max(m, s[j]);
          }
          let l = 0;
          for (let j = 0; j < Lk; j++) {
            s[j] = keyMask != null && keyMask[n * Lk + j] === 0 ? 0 : Math.exp(s[j] - m);
            l += s[j];
          }
          for (let j = 0; j < Lk; j++) for (let d = 0; d < Dh; d++) o[qi + d] += (s[j] / l) * v[kv + j * Dh + d];
        }
      }
    }
    return o;
  },
};

/** PixArt's fixed 2D sin-cos embedding at grid (rows, cols) = (gh, gw): `[T, D]`, columns in the first D/2. */
function posEmbed(gh: number, gw: number, D: number): Float64Array {
  const q = D / 4;
  const out = new Float64Array(gh * gw * D);
  const oneD = (pos: number, o: number) => {
    for (let k = 0; k < q; k++) {
      const a = pos / 10000 ** (k / q);
      out[o + k] = Math.sin(a);
      out[o + q + k] = Math.cos(a);
    }
  };
  for (let i = 0; i < gh; i++) {
    for (let j = 0; j < gw; j++) {
      oneD(j, (i * gw + j) * D);
      oneD(i, (i * gw + j) * D + 2 * q);
    }
  }
  return out;
}

/** `[N, L, H·Dh]` → `[N, H, L, Dh]` (a head takes columns h·Dh..(h+1)·Dh). */
function splitHeads(x: Float64Array, N: number, L: number, H: number, Dh: number, stride = H * Dh, offset = 0): Float64Array {
  const out = new Float64Array(N * H * L * Dh);
  for (let n = 0; n < N; n++)
    for (let l = 0; l < L; l++)
      for (let h = 0; h < H; h++)
        for (let d = 0; d < Dh; d++) out[((n * H + h) * L + l) * Dh + d] = x[(n * L + l) * stride + offset + h * Dh + d];
  return out;
}

/** `[N, H, L, Dh]` → `[N, L, H·Dh]`. */
function mergeHeads(o: Float64Array, N: number, L: number, H: number, Dh: number): Float64Array {
  const out = new Float64Array(N * L * H * Dh);
  for (let n = 0; n < N; n++)
    for (let h = 0; h < H; h++)
      for (let l = 0; l < L; l++) for (let d = 0; d < Dh; d++) out[(n * L + l) * H * Dh + h * Dh + d] = o[((n * H + h) * L + l) * Dh + d];
  return out;
}

/** Row r of an ada `[N, K, D]` (table + per-sample term) as `[N, D]`. */
function adaRow(table: Param, t: Float64Array, K: number, r: number, N: number, D: number): Float64Array {
  const out = new Float64Array(N * D);
  for (let n = 0; n < N; n++) for (let d = 0; d < D; d++) out[n * D + d] = table.data[r * D + d] + t[(n * K + r) * D + d];
  return out;
}

/** x + gate ⊙ m, gate `[N, D]` broadcast over the T tokens of each sample. */
function gatedAdd(x: Float64Array, m: Float64Array, gate: Float64Array, N: number, D: number): Float64Array {
  const T = x.length / (N * D);
  return x.map((v, i) => v + gate[Math.floor(i / (T * D)) * D + (i % D)] * m[i]);
}

/** What one forward reads: x `[N, C, H, W]`, t `[N]`, y `[N, Lc, Dc]`, keyMask `[N, Lc]` (1 = keep), dropped rows. */
export interface PixArtInputs {
  x: Float64Array;
  H: number;
  W: number;
  t: Float64Array;
  y: Float64Array;
  yMask?: Uint8Array;
  /** Rows whose caption is PixArt's null caption `y_embedding` (classifier-free guidance); all its tokens count. */
  dropCaption?: boolean[];
}

/**
 * PixArt's forward: x_embedder (p×p conv, stride p) + pos_embed, t_embedder, t_block (adaLN-single),
 * y_embedder, the blocks (self-attention, cross-attention to the kept caption tokens, MLP, each gated),
 * T2I final layer, unpatchify. Returns `[N, Cout, H, W]`, Cout = 2C with learned sigma.
 */
export async function pixartForward(
  c: PixArtSizes,
  w: Record<string, Param>,
  inp: PixArtInputs,
  ops: PixArtOps = F64_OPS,
): Promise<Float64Array> {
  const { inChannels: C, patchSize: p, hiddenSize: D, numHeads: Hn, captionChannels: Dc } = c;
  const N = inp.t.length;
  const [gh, gw] = [inp.H / p, inp.W / p];
  const T = gh * gw;
  const Lc = inp.y.length / (N * Dc);
  const Dh = D / Hn;
  const P = (name: string) => {
    const v = w[name];
    if (v == null) throw new Error(`pixartForward: no weight ${name}`);
    return v;
  };
  // x_embedder: a conv with kernel = stride = p, then flatten(2).transpose(1, 2), plus the fixed embedding
  const pe = posEmbed(gh, gw, D);
  const cw = P('x_embedder.proj.weight').data;
  const cb = P('x_embedder.proj.bias').data;
  let x: Float64Array = new Float64Array(N * T * D); // [N, T, D]
  for (let n = 0; n < N; n++)
    for (let i = 0; i < gh; i++)
      for (let j = 0; j < gw; j++)
        for (let d = 0; d < D; d++) {
          let s = cb[d];
          for (let ch = 0; ch < C; ch++)
            for (let u = 0; u < p; u++)
              for (let v = 0; v < p; v++)
                s += cw[((d * C + ch) * p + u) * p + v] * inp.x[((n * C + ch) * inp.H + i * p + u) * inp.W + j * p + v];
          x[(n * T + i * gw + j) * D + d] = s + pe[(i * gw + j) * D + d];
        }
  // t_embedder and t_block
  const feats = await ops.timestepFeatures(inp.t, 256);
  const temb = await ops.linear(
    await ops.silu(await ops.linear(feats, P('t_embedder.mlp.0.weight'), P('t_embedder.mlp.0.bias'))),
    P('t_embedder.mlp.2.weight'),
    P('t_embedder.mlp.2.bias'),
  ); // [N, D]
  const t0 = await ops.linear(await ops.silu(temb), P('t_block.1.weight'), P('t_block.1.bias')); // [N, 6D]
  // y_embedder, with the null caption for dropped rows (whose tokens then all count)
  const yIn = Float64Array.from(inp.y);
  const mask = inp.yMask ? Uint8Array.from(inp.yMask) : null;
  const nullCaption = w['y_embedder.y_embedding']?.data;
  for (const [n, drop] of (inp.dropCaption ?? []).entries()) {
    if (!drop) continue;
    if (nullCaption == null) throw new Error('pixartForward: dropCaption needs y_embedder.y_embedding');
    yIn.set(nullCaption, n * Lc * Dc);
    if (mask) mask.fill(1, n * Lc, (n + 1) * Lc);
  }
  const yEmb = await ops.linear(
    await ops.gelu(await ops.linear(yIn, P('y_embedder.y_proj.fc1.weight'), P('y_embedder.y_proj.fc1.bias'))),
    P('y_embedder.y_proj.fc2.weight'),
    P('y_embedder.y_proj.fc2.bias'),
  ); // [N, Lc, D]
  for (let b = 0; b < c.depth; b++) {
    const B = (name: string) => P(`blocks.${b}.${name}`);
    const table = B('scale_shift_table');
    const row = (r: number) => adaRow(table, t0, 6, r, N, D);
    // self-attention on modulate(norm1(x), shift_msa, scale_msa), gated by gate_msa
    const h = await ops.modulatedNorm(x, row(0), row(1), N, D);
    const qkv = await ops.linear(h, B('attn.qkv.weight'), B('attn.qkv.bias')); // [N, T, 3D]: q, k, v
    const [q, k, v] = [0, 1, 2].map((i) => splitHeads(qkv, N, T, Hn, Dh, 3 * D, i * D));
    const sa = await ops.attention(q!, k!, v!, { N, H: Hn, Lq: T, Lk: T, Dh }, null);
    x = gatedAdd(x, await ops.linear(mergeHeads(sa, N, T, Hn, Dh), B('attn.proj.weight'), B('attn.proj.bias')), row(2), N, D);
    // cross-attention to the caption (k first, then v in kv_linear's output), ungated
    const qc = splitHeads(await ops.linear(x, B('cross_attn.q_linear.weight'), B('cross_attn.q_linear.bias')), N, T, Hn, Dh);
    const kv = await ops.linear(yEmb, B('cross_attn.kv_linear.weight'), B('cross_attn.kv_linear.bias')); // [N, Lc, 2D]
    const kc = splitHeads(kv, N, Lc, Hn, Dh, 2 * D, 0);
    const vc = splitHeads(kv, N, Lc, Hn, Dh, 2 * D, D);
    const ca = await ops.attention(qc, kc, vc, { N, H: Hn, Lq: T, Lk: Lc, Dh }, mask);
    const cross = await ops.linear(mergeHeads(ca, N, T, Hn, Dh), B('cross_attn.proj.weight'), B('cross_attn.proj.bias'));
    x = x.map((val, i) => val + cross[i]!);
    // MLP on modulate(norm2(x), shift_mlp, scale_mlp), gated by gate_mlp
    const h2 = await ops.modulatedNorm(x, row(3), row(4), N, D);
    const mlp = await ops.linear(
      await ops.gelu(await ops.linear(h2, B('mlp.fc1.weight'), B('mlp.fc1.bias'))),
      B('mlp.fc2.weight'),
      B('mlp.fc2.bias'),
    );
    x = gatedAdd(x, mlp, row(5), N, D);
  }
  // T2I final layer: shift, scale = scale_shift_table + t (the timestep embedding, not t0)
  const ft = P('final_layer.scale_shift_table');
  const t2 = new Float64Array(N * 2 * D);
  for (let n = 0; n < N; n++) for (let r = 0; r < 2; r++) t2.set(temb.subarray(n * D, (n + 1) * D), (n * 2 + r) * D);
  const hf = await ops.modulatedNorm(x, adaRow(ft, t2, 2, 0, N, D), adaRow(ft, t2, 2, 1, N, D), N, D);
  const o = await ops.linear(hf, P('final_layer.linear.weight'), P('final_layer.linear.bias')); // [N, T, p·p·Cout]
  // unpatchify: [N, gh, gw, p, p, Cout] → [N, Cout, gh·p, gw·p]
  const Co = c.learnSigma ? 2 * C : C;
  const img = new Float64Array(N * Co * inp.H * inp.W);
  for (let n = 0; n < N; n++)
    for (let i = 0; i < gh; i++)
      for (let j = 0; j < gw; j++)
        for (let u = 0; u < p; u++)
          for (let v = 0; v < p; v++)
            for (let ch = 0; ch < Co; ch++)
              img[((n * Co + ch) * inp.H + i * p + u) * inp.W + j * p + v] = o[(n * T + i * gw + j) * p * p * Co + (u * p + v) * Co + ch]!;
  return img;
}

/** PixArt's state-dict names and shapes for these sizes (the weights a PixArt checkpoint holds, less `pos_embed`). */
export function pixartShapes(c: PixArtSizes): Record<string, number[]> {
  const { hiddenSize: D, patchSize: p, inChannels: C, captionChannels: Dc } = c;
  const Dm = Math.round(D * c.mlpRatio);
  const Co = c.learnSigma ? 2 * C : C;
  const lin = (name: string, out: number, inF: number) => ({ [`${name}.weight`]: [out, inF], [`${name}.bias`]: [out] });
  const shapes: Record<string, number[]> = {
    'x_embedder.proj.weight': [D, C, p, p],
    'x_embedder.proj.bias': [D],
    ...lin('t_embedder.mlp.0', D, 256),
    ...lin('t_embedder.mlp.2', D, D),
    ...lin('t_block.1', 6 * D, D),
    ...lin('y_embedder.y_proj.fc1', D, Dc),
    ...lin('y_embedder.y_proj.fc2', D, D),
    'y_embedder.y_embedding': [c.captionLength, Dc],
  };
  for (let b = 0; b < c.depth; b++) {
    Object.assign(shapes, {
      [`blocks.${b}.scale_shift_table`]: [6, D],
      ...lin(`blocks.${b}.attn.qkv`, 3 * D, D),
      ...lin(`blocks.${b}.attn.proj`, D, D),
      ...lin(`blocks.${b}.cross_attn.q_linear`, D, D),
      ...lin(`blocks.${b}.cross_attn.kv_linear`, 2 * D, D),
      ...lin(`blocks.${b}.cross_attn.proj`, D, D),
      ...lin(`blocks.${b}.mlp.fc1`, Dm, D),
      ...lin(`blocks.${b}.mlp.fc2`, D, Dm),
    });
  }
  Object.assign(shapes, { ...lin('final_layer.linear', p * p * Co, D), 'final_layer.scale_shift_table': [2, D] });
  return shapes;
}
