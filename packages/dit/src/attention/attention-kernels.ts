/**
 * Kernels of `attention`: the forward `T2mdAttention` (outputs out and the per-row log-sum-exp L) and
 * the backward `T2mdAttentionGrad` (outputs dq, dk, dv), for cpu, wasm (attention-host.ts: matrix
 * products on the backend's own kernels; the plain loops of attention-loops.ts are the reference) and
 * webgpu.
 *
 * Backward follows FlashAttention-2 (Dao 2023, Alg. 2): nothing of size Lq x Lk is kept; P is
 * recomputed from S and L as exp(S - L), with D_i = rowsum(dO ∘ O) and dS = P ∘ (dP - D).
 */
import { disposeIntermediate, emptyOutput, onEveryBackend, runProgram } from '@t2md/core';
import { getKernel, type KernelBackend, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { attentionBackwardHost, attentionForwardHost } from './attention-host.js';
import {
  AttentionForwardProgram,
  AttentionGradKVProgram,
  AttentionGradQProgram,
  type AttentionLayouts,
  type AttentionTiles,
  attentionUniforms,
  columnPacked,
  headMajor,
  RowDotProgram,
  type RowLayout,
  tilesFor,
  vec4Layouts,
} from './attention-webgpu.js';

export const ATTENTION = 'T2mdAttention';
export const ATTENTION_GRAD = 'T2mdAttentionGrad';

/**
 * Heads packed in the columns of 2-D inputs (webgpu only, see `headsAttention`): q `[B·Lq, Cq]`, k, v
 * `[B·Lk, Ck]` with head h of each at columns `off + h·Dh ..`; layouts in floats (attention-webgpu.ts).
 * Outputs then come as `[B·Lq, H·Dh]` (out, dq) and `[B·Lk, H·Dh]` (dk, dv).
 */
export interface PackedHeads {
  B: number;
  H: number;
  Lq: number;
  Lk: number;
  Dh: number;
  q: RowLayout;
  k: RowLayout;
  v: RowLayout;
}

/** Kernel attributes: the logit scale, and whether the keyMask input is real (else it is a placeholder nobody reads). */
export interface AttentionAttrs {
  scale: number;
  hasMask: boolean;
  /** Tile sizes of the webgpu programs (checked by `resolveAttentionTiles`); cpu and wasm ignore them. */
  tiles: AttentionTiles;
  /** cpu and wasm: most scores (query rows × keys) held at once (attention-host.ts); webgpu ignores it. */
  scoreBlock: number;
  /**
   * wasm: take each batch entry's heads in one pair of products when there are few keys
   * (attention-host.ts `stackedHeads`); absent: when XNNPACK runs on more than one thread. For tests.
   */
  stackHeads?: boolean;
  /**
   * cpu and wasm: compute the log-sum-exp output (absent: true). `attention` passes false: the host
   * backward recomputes P from q and k and never reads it, and its two row maxima per score block took
   * 18% of the self-attention kernel in sampling. The per-head products then leave it NaN (webgpu
   * ignores this: its backward reads L).
   */
  hostLse?: boolean;
  /** Inputs with heads packed in columns (webgpu); absent: `[B, H, L, Dh]` tensors. */
  packed?: PackedHeads;
  /**
   * Packed only: write the gradients straight into the layout of the inputs. 'qkv' (q, k and v are
   * blocks of one matrix whose columns they fill): one output, the gradient of that matrix; 'kv' (k and
   * v fill the columns of theirs): dq, then one gradient of the kv matrix. Saves the concat.
   */
  gradInto?: 'qkv' | 'kv';
}

const jsForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const { q, k, v, keyMask } = inputs as Record<string, TensorInfo>;
  const a = attrs as unknown as AttentionAttrs;
  return attentionForwardHost(
    backend as KernelBackend,
    q!,
    k!,
    v!,
    a.hasMask ? keyMask : undefined,
    a.scale,
    a.scoreBlock,
    a.stackHeads,
    a.hostLse,
  );
};

const jsGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { q, k, v, keyMask, out, dy } = inputs as Record<string, TensorInfo>;
  const a = attrs as unknown as AttentionAttrs;
  return attentionBackwardHost(backend as KernelBackend, q!, k!, v!, a.hasMask ? keyMask : undefined, out!, dy!, a.scale, a.scoreBlock);
};

function maxWorkgroupStorage(backend: KernelBackend): number {
  const device = (backend as unknown as { device?: GPUDevice }).device;
  return device?.limits.maxComputeWorkgroupStorageSize ?? 16384;
}

/** Sizes and buffer layouts of a webgpu call: from the packed attribute, or `[B, H, L, Dh]` tensors. */
function webgpuCall(q: TensorInfo, k: TensorInfo, packed: PackedHeads | undefined) {
  if (packed != null) {
    const { B, H, Lq, Lk, Dh } = packed;
    const D = H * Dh;
    const ls: AttentionLayouts = {
      q: packed.q,
      k: packed.k,
      v: packed.v,
      o: columnPacked(Lq, D, Dh, 0),
      g: columnPacked(Lq, D, Dh, 0),
      gk: columnPacked(Lk, D, Dh, 0),
    };
    return { B, H, Lq, Lk, Dh, ls, outShape: [B * Lq, D], kShape: [B * Lk, D] };
  }
  const [B, H, Lq, Dh] = q.shape as [number, number, number, number];
  const Lk = k.shape[2] as number;
  const ls: AttentionLayouts = {
    q: headMajor(H, Lq, Dh),
    k: headMajor(H, Lk, Dh),
    v: headMajor(H, Lk, Dh),
    o: headMajor(H, Lq, Dh),
    g: headMajor(H, Lq, Dh),
    gk: headMajor(H, Lk, Dh),
  };
  return { B, H, Lq, Lk, Dh, ls, outShape: [B, H, Lq, Dh], kShape: [B, H, Lk, Dh] };
}

/** Elements [begin, begin + n) of a 1-D buffer as a tensor of `shape`: a buffer copy where the Slice kernel can make one. */
function piece(backend: KernelBackend, flat: TensorInfo, begin: number, n: number, shape: number[]): TensorInfo {
  const slice = getKernel('Slice', 'webgpu')!.kernelFunc;
  const out = slice({ inputs: { x: flat }, backend, attrs: { begin: [begin], size: [n] } }) as TensorInfo;
  return { ...out, shape };
}

const gpuForward: KernelFunc = ({ inputs, backend: be, attrs }) => {
  const backend = be as KernelBackend;
  const { q, k, v, keyMask } = inputs as Record<string, TensorInfo>;
  const { scale, hasMask, packed, tiles } = attrs as unknown as AttentionAttrs;
  const { B, H, Lq, Lk, Dh, ls, outShape } = webgpuCall(q, k, packed);
  const w4 = vec4Layouts(Dh, ls);
  const t = tilesFor(Dh, maxWorkgroupStorage(backend), tiles).fwd;
  const both = runProgram(
    backend,
    new AttentionForwardProgram([B, H, Lq, Dh], hasMask, t, w4),
    hasMask ? [q, k, v, keyMask] : [q, k, v],
    attentionUniforms(Lq, Lk, H, B * H, Lq, scale, t.rows, ls, w4 ? 4 : 1),
  );
  const nO = B * H * Lq * Dh;
  const out = piece(backend, both, 0, nO, outShape);
  const lse = piece(backend, both, nO, B * H * Lq, [B, H, Lq]);
  disposeIntermediate(backend, both);
  return [out, lse];
};

const gpuGrad: KernelFunc = ({ inputs, backend: be, attrs }) => {
  const backend = be as KernelBackend;
  const { q, k, v, keyMask, out, lse, dy } = inputs as Record<string, TensorInfo>;
  const { scale, hasMask, packed, gradInto, tiles } = attrs as unknown as AttentionAttrs;
  const { B, H, Lq, Lk, Dh, ls, outShape, kShape } = webgpuCall(q, k, packed);
  // where each gradient goes: its own dense tensor, or its block of the input matrix's gradient
  let dqL = ls.g;
  let dkL = ls.gk;
  let dvL = ls.gk;
  let shared: TensorInfo | undefined;
  let sharedKv: TensorInfo | undefined;
  if (packed != null && gradInto === 'qkv') {
    const C = q.shape[1]!;
    shared = emptyOutput(backend, [B * Lq, C]);
    [dqL, dkL, dvL] = [packed.q, packed.k, packed.v];
  } else if (packed != null && gradInto === 'kv') {
    const C = k.shape[1]!;
    sharedKv = emptyOutput(backend, [B * Lk, C]);
    [dkL, dvL] = [packed.k, packed.v];
  }
  const all = [dqL, dkL, dvL, ls.q, ls.k, ls.v, ls.o];
  const w4 = Dh % 4 === 0 && all.every((l) => l.every((x) => x % 4 === 0));
  const w = w4 ? 4 : 1;
  const t = tilesFor(Dh, maxWorkgroupStorage(backend), tiles).bwd;
  const rd = new RowDotProgram([B, H, Lq], Dh, w4);
  const D = runProgram(backend, rd, [dy, out], rd.programUniforms(B * H * Lq, Lq, H, ls.o));
  const m = hasMask ? [keyMask] : [];
  const qShape = [B, H, Lq, Dh];
  const k4 = [B, H, Lk, Dh];
  const dq = runProgram(
    backend,
    new AttentionGradQProgram(qShape, hasMask, t, w4, shared?.shape ?? outShape),
    [q, k, v, dy, lse, D, ...m],
    attentionUniforms(Lq, Lk, H, B * H, Lq, scale, t.rows, { ...ls, g: dqL }, w, 'q'),
    'float32',
    shared,
  );
  const kvOut = shared ?? sharedKv;
  const kvShape = kvOut?.shape ?? kShape;
  const dk = runProgram(
    backend,
    new AttentionGradKVProgram(k4, 'dk', hasMask, t, w4, kvShape),
    [q, k, v, dy, lse, D, ...m],
    attentionUniforms(Lq, Lk, H, B * H, Lk, scale, t.rows, { ...ls, gk: dkL }, w, 'k'),
    'float32',
    kvOut,
  );
  const dv = runProgram(
    backend,
    new AttentionGradKVProgram(k4, 'dv', hasMask, t, w4, kvShape),
    [q, k, dy, lse, ...m],
    attentionUniforms(Lq, Lk, H, B * H, Lk, scale, t.rows, { ...ls, gk: dvL }, w, 'k'),
    'float32',
    kvOut,
  );
  disposeIntermediate(backend, D);
  if (shared != null) return [dq];
  if (sharedKv != null) return [dq, dk];
  return [dq, dk, dv];
};

export const attentionKernels: KernelConfig[] = [
  ...onEveryBackend(ATTENTION, jsForward, gpuForward),
  ...onEveryBackend(ATTENTION_GRAD, jsGrad, gpuGrad),
];
