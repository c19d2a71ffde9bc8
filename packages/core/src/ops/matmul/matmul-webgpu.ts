/**
 * The WGSL of `T2mdMatMul`: C[M, N] = op(A) · op(B) (+ bias[N]), f32, 2-D, as a register-blocked
 * tiled GEMM. Each workgroup of 256 threads owns a BM×BN tile of C; each thread owns a TM×TN
 * micro-tile held in vec4 registers. K advances BK at a time through two workgroup-memory buffers:
 * while the threads multiply from one buffer they have already fetched the next K-tile from global
 * memory into registers, and store it into the other buffer afterwards, so one barrier per K-tile
 * suffices and global latency hides behind the FMAs.
 *
 * Workgroup memory keeps both operands K-major (`As[k][m]`, `Bs[k][n]`, as vec4 along m / n), so the
 * inner loop reads one vec4 of A and one of B per 4 rows / 4 columns and does 16 FMAs per pair: a
 * 128×128 tile with 8×8 per thread does 64 FMAs per 4 vec4 reads, which keeps the inner loop
 * FMA-bound rather than shared-memory-bound (the reason for the 8×8 micro-tile).
 */
import type { WebGPUProgramSpec } from '../../kernel/webgpu-program.js';
import { biasFn, loadFn, storeFn, TileMover } from './matmul-wgsl.js';

/** One tiling: output tile BM×BN per workgroup, K-tile BK, TM×TN outputs per thread (multiples of 4). */
export interface MatMulTile {
  readonly BM: number;
  readonly BN: number;
  readonly BK: number;
  readonly TM: number;
  readonly TN: number;
}

/**
 * t128: for large M·N, the highest FMA-to-load ratio (64 FMAs per 4 shared vec4 reads; 32 KiB of
 * workgroup memory double-buffered). t64: 4× more workgroups for shapes whose 128×128 tiles would not
 * fill the H100's 132 SMs a few times over (e.g. N = 1152 at small M); 16 KiB.
 */
export const MATMUL_TILES = {
  t128: { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 },
  t64: { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4 },
} as const satisfies Record<string, MatMulTile>;

export type MatMulTileName = keyof typeof MATMUL_TILES;

/** Tiles walked along N in groups of this many M-tiles, so that workgroups running together share A and B panels in L2. */
const GROUP_M = 8;

export interface MatMulProgramOptions {
  M: number;
  N: number;
  K: number;
  transposeA: boolean;
  transposeB: boolean;
  hasBias: boolean;
  tile: MatMulTileName;
  /** k-steps written out per iteration of the inner k loop; BK (the default) writes the K-tile out whole. */
  unroll?: number;
  /**
   * Split K over this many workgroup layers (default 1): layer z sums its own run of K-tiles into
   * partial `[z, M, N]` of a `[splitK, M, N]` output, which `SplitKReduceProgram` then sums (adding the
   * bias there, so a split program takes none). For outputs too small to fill the GPU, such as the
   * weight gradient dW = dYᵀ·X: [128, 128] summed over 131,072 rows is 4 tiles of 64×64 without a split.
   */
  splitK?: number;
}

/**
 * A `[M, K]` (or `[K, M]` with transposeA), B `[K, N]` (or `[N, K]` with transposeB), bias `[N]`
 * → C `[M, N]`. Shapes reach the shader as tfjs's built-in uniforms (aShape, bShape, outShape); the
 * tile, the transposes, the bias and which operands are read as vec4 are baked in and keyed.
 */
export class MatMulProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames: string[];
  variableComponents: number[];
  outputComponent: number;
  private readonly o: MatMulProgramOptions;
  private readonly t: MatMulTile;
  private readonly vecA: boolean;
  private readonly vecB: boolean;
  private readonly vecC: boolean;
  private readonly unroll: number;
  private readonly splitK: number;

  constructor(o: MatMulProgramOptions) {
    this.o = o;
    this.splitK = o.splitK ?? 1;
    if (this.splitK > 1 && (o.hasBias || o.tile !== 't64')) {
      throw new Error('MatMulProgram: a split-K program is t64 (t128 leaves no workgroup memory on 32 KiB devices) and takes no bias.');
    }
    this.t = MATMUL_TILES[o.tile];
    this.unroll = Math.min(o.unroll ?? this.t.BK, this.t.BK);
    const { BM, BN, TM, TN } = this.t;
    // vec4 access needs the contiguous axis to be a multiple of 4: then every aligned vec4 lies wholly
    // inside or wholly outside the matrix, and the buffer holds a whole number of vec4s.
    this.vecA = (o.transposeA ? o.M : o.K) % 4 === 0;
    this.vecB = (o.transposeB ? o.K : o.N) % 4 === 0;
    this.vecC = o.N % 4 === 0;
    this.outputShape = this.splitK > 1 ? [this.splitK, o.M, o.N] : [o.M, o.N];
    this.variableNames = o.hasBias ? ['A', 'B', 'Bias'] : ['A', 'B'];
    this.variableComponents = [this.vecA ? 4 : 1, this.vecB ? 4 : 1, ...(o.hasBias ? [this.vecC ? 4 : 1] : [])];
    this.outputComponent = this.vecC ? 4 : 1;
    this.workgroupSize = [(BM / TM) * (BN / TN), 1, 1];
    this.dispatch = [Math.ceil(o.N / BN), Math.ceil(o.M / BM), this.splitK];
    const flag = (b: boolean) => (b ? '1' : '0');
    this.shaderKey = `t2md_matmul_${o.tile}_t${flag(o.transposeA)}${flag(o.transposeB)}_v${flag(this.vecA)}${flag(this.vecB)}${flag(this.vecC)}_b${flag(o.hasBias)}_u${this.unroll}${this.splitK > 1 ? '_split' : ''}`;
  }

  getUserCode(): string {
    const { BM, BN, BK, TM, TN } = this.t;
    const { transposeA: tA, transposeB: tB, hasBias } = this.o;
    const WX = BN / TN; // threads along N
    const WY = BM / TM; // threads along M
    const NT = WX * WY;
    const SM = TM / 4; // vec4 row strips per thread, WY vec4-rows apart
    const SN = TN / 4; // vec4 column strips per thread, WX vec4-columns apart
    const mover = new TileMover({ BM, BN, BK, NT, tA, tB });
    const accs: string[] = [];
    for (let i = 0; i < TM; i++) for (let s = 0; s < SN; s++) accs.push(`acc_${i}_${s}`);

    // The k loop runs UK k-steps per iteration, written out (UK = BK: no loop at all).
    const UK = this.unroll;
    const inner: string[] = [];
    for (let k = 0; k < UK; k++) {
      const kk = `(kb + ${k}) * `;
      for (let s = 0; s < SM; s++) inner.push(`let a${k}_${s} = As[curA + ${kk}${BM / 4} + ty + ${s * WY}];`);
      for (let s = 0; s < SN; s++) inner.push(`let b${k}_${s} = Bs[curB + ${kk}${BN / 4} + tx + ${s * WX}];`);
      for (let i = 0; i < TM; i++) {
        const a = `a${k}_${i >> 2}.${'xyzw'[i & 3]}`;
        for (let s = 0; s < SN; s++) inner.push(`acc_${i}_${s} = fma(vec4<f32>(${a}), b${k}_${s}, acc_${i}_${s});`);
      }
    }
    const innerLoop =
      UK === BK
        ? `{ let kb = 0;\n    ${inner.join('\n    ')}\n    }`
        : `for (var kb = 0; kb < ${BK}; kb += ${UK}) {\n    ${inner.join('\n    ')}\n    }`;

    const split = this.splitK > 1;
    const epilogue: string[] = [];
    for (let s = 0; s < SN; s++) {
      const c = `n0 + (tx + ${s * WX}) * 4`;
      epilogue.push(`let c${s} = ${c};`);
      if (hasBias) epilogue.push(`let bias${s} = loadBias4(c${s}, N);`);
    }
    for (let i = 0; i < TM; i++) {
      epilogue.push(`let r${i} = m0 + (ty + ${(i >> 2) * WY}) * 4 + ${i & 3};`);
      for (let s = 0; s < SN; s++) epilogue.push(`storeC4(r${i}, c${s}, M, N, zRow, acc_${i}_${s}${hasBias ? ` + bias${s}` : ''});`);
    }

    return `
const BM4 : i32 = ${BM / 4};
const BN4 : i32 = ${BN / 4};
const A_TILE : i32 = ${BK * (BM / 4)};
const B_TILE : i32 = ${BK * (BN / 4)};
var<workgroup> As : array<vec4<f32>, ${2 * BK * (BM / 4)}>;
var<workgroup> Bs : array<vec4<f32>, ${2 * BK * (BN / 4)}>;
${split ? 'var<workgroup> tileCount : i32;' : ''}
${loadFn('A', this.vecA)}
${loadFn('B', this.vecB)}
${hasBias ? biasFn(this.vecC) : ''}
${storeFn(this.vecC)}

fn main() {
  let M = ${split ? 'uniforms.outShape.y' : 'uniforms.outShape.x'};
  let N = ${split ? 'uniforms.outShape.z' : 'uniforms.outShape.y'};
  let K = ${tA ? 'uniforms.aShape.x' : 'uniforms.aShape.y'};
  let allTiles = (K + ${BK - 1}) / ${BK};
  ${
    split
      ? `// Split K: layer z takes K-tiles [z·per, (z+1)·per) and writes rows z·M.. of the [S, M, N] output.
  let S = i32(numWorkgroups.z);
  let z = i32(workgroupId.z);
  let per = (allTiles + S - 1) / S;
  let kBase = z * per * ${BK};
  let zRow = z * M;
  // tfjs hands the builtins over as module-scope copies, which WGSL's uniformity analysis cannot prove
  // uniform; the loop around the barriers needs a bound it can: read back through workgroup memory.
  if (localIndex == 0u) { tileCount = max(0, min(per, allTiles - z * per)); }
  let numTiles = workgroupUniformLoad(&tileCount);`
      : `let kBase = 0;
  let zRow = 0;
  let numTiles = allTiles;`
  }
  let lid = i32(localIndex);
  let tx = lid % ${WX};
  let ty = lid / ${WX};

  // Grouped tile order (pid -> tile): consecutive workgroups cover ${GROUP_M} M-tiles × all N-tiles.
  let tilesN = i32(numWorkgroups.x);
  let tilesM = i32(numWorkgroups.y);
  let pid = i32(workgroupId.y) * tilesN + i32(workgroupId.x);
  let perGroup = ${GROUP_M} * tilesN;
  let firstM = (pid / perGroup) * ${GROUP_M};
  let groupM = min(tilesM - firstM, ${GROUP_M});
  let inGroup = pid % perGroup;
  let m0 = (firstM + inGroup % groupM) * ${BM};
  let n0 = (inGroup / groupM) * ${BN};

  ${accs.map((a) => `var ${a} = vec4<f32>(0.0);`).join('\n  ')}
  ${mover.declare()}

  ${mover.fetch('kBase')}
  ${mover.stash('0', '0')}
  workgroupBarrier();
  for (var t = 0; t < numTiles; t++) {
    let curA = (t % 2) * A_TILE;
    let curB = (t % 2) * B_TILE;
    let k1 = kBase + (t + 1) * ${BK};
    if (t + 1 < numTiles) {
      ${mover.fetch('k1')}
    }
    ${innerLoop}
    if (t + 1 < numTiles) {
      ${mover.stash('A_TILE - curA', 'B_TILE - curB')}
    }
    workgroupBarrier();
  }

  ${epilogue.join('\n  ')}
}
`;
  }
}

/**
 * The second pass of a split-K GEMM: C[m, n] = Σ_z P[z, m, n] (+ bias[n]) over the `[S, M, N]`
 * partials of `MatMulProgram` with `splitK = S`; vec4 along n when N is a multiple of 4.
 */
export class SplitKReduceProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [256, 1, 1];
  variableNames: string[];
  variableComponents: number[];
  outputComponent: number;
  size = true;
  private readonly vec: boolean;
  private readonly hasBias: boolean;

  constructor(S: number, M: number, N: number, hasBias: boolean) {
    this.vec = N % 4 === 0;
    this.hasBias = hasBias;
    this.outputShape = [M, N];
    this.variableNames = hasBias ? ['P', 'Bias'] : ['P'];
    const c = this.vec ? 4 : 1;
    this.variableComponents = hasBias ? [c, c] : [c];
    this.outputComponent = c;
    this.dispatch = [Math.ceil((M * N) / c / 256), 1, 1];
    this.shaderKey = `t2md_matmul_splitk_reduce_v${this.vec ? 1 : 0}_b${hasBias ? 1 : 0}`;
    void S;
  }

  getUserCode(): string {
    const T = this.vec ? 'vec4<f32>' : 'f32';
    const c = this.vec ? 4 : 1;
    return `
fn main(index : i32) {
  if (index >= uniforms.size) { return; }
  let S = uniforms.pShape.x;
  let MN = uniforms.pShape.y * uniforms.pShape.z / ${c};
  var acc = ${T}(0.0);
  for (var z = 0; z < S; z++) { acc = acc + P[z * MN + index]; }
  ${this.hasBias ? `acc = acc + Bias[index % (uniforms.pShape.z / ${c})];` : ''}
  result[index] = acc;
}
`;
  }
}
