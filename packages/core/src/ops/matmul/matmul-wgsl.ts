/** WGSL pieces of the tiled GEMM (matmul-webgpu.ts): moving K-tiles into workgroup memory, bounded loads and stores. */

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/**
 * Moves K-tiles of A and B from global memory to workgroup memory in 4×4 blocks: a thread loads a
 * block as 4 vec4s along the memory's contiguous axis into registers (`fetch`, one K-tile ahead) and
 * later writes it K-major as 4 whole vec4s (`stash`), transposing in registers where the contiguous
 * axis is k (A without transposeA, B with transposeB). Whole-vec4 stores only: a store to one
 * component of a shared vec4 is a read-modify-write of the vector on some backends (Tint's HLSL
 * output), which would race with the threads writing its other components.
 * The blocks of A come first, then B's; thread `lid` takes blocks lid, lid + NT, ...
 */
export class TileMover {
  private readonly blocksA: number;
  private readonly blocksB: number;
  private readonly slots: number;

  constructor(private readonly c: { BM: number; BN: number; BK: number; NT: number; tA: boolean; tB: boolean }) {
    this.blocksA = (c.BM * c.BK) / 16;
    this.blocksB = (c.BN * c.BK) / 16;
    this.slots = Math.ceil((this.blocksA + this.blocksB) / c.NT);
  }

  declare(): string {
    return range(this.slots)
      .map((s) =>
        range(4)
          .map((j) => `var p${s}_${j} = vec4<f32>(0.0);`)
          .join(' '),
      )
      .join('\n  ');
  }

  /** Loads the K-tile starting at k0 into the registers. */
  fetch(k0: string): string {
    return this.perSlot((s, x, b) => {
      const { kMajor, W4, origin, dim } = this.operand(x);
      const lines: string[] = [];
      if (kMajor) {
        // memory [K, MN]: block = 4 k-rows × 4 mn, mn-quad fastest (a warp reads along one k-row)
        lines.push(`let mq = ${b} % ${W4}; let kq = ${b} / ${W4};`);
        for (let j = 0; j < 4; j++) lines.push(`p${s}_${j} = load${x}4(${k0} + kq * 4 + ${j}, ${origin} + mq * 4, K, ${dim});`);
      } else {
        // memory [MN, K]: block = 4 mn-rows × 4 k, k-quad fastest
        lines.push(`let kq = ${b} % ${this.c.BK / 4}; let rq = ${b} / ${this.c.BK / 4};`);
        for (let j = 0; j < 4; j++) lines.push(`p${s}_${j} = load${x}4(${origin} + rq * 4 + ${j}, ${k0} + kq * 4, ${dim}, K);`);
      }
      return lines;
    });
  }

  /** Writes the registers K-major into As / Bs at offsets bufA / bufB. */
  stash(bufA: string, bufB: string): string {
    return this.perSlot((s, x, b) => {
      const { kMajor, W4 } = this.operand(x);
      const buf = x === 'A' ? bufA : bufB;
      const lines: string[] = [];
      if (kMajor) {
        lines.push(`let at = ${buf} + (${b} / ${W4}) * ${4 * W4} + ${b} % ${W4};`);
        for (let j = 0; j < 4; j++) lines.push(`${x}s[at + ${j * W4}] = p${s}_${j};`);
      } else {
        lines.push(`let at = ${buf} + (${b} % ${this.c.BK / 4}) * ${4 * W4} + ${b} / ${this.c.BK / 4};`);
        for (let j = 0; j < 4; j++) {
          const c = 'xyzw'[j];
          lines.push(`${x}s[at + ${j * W4}] = vec4<f32>(p${s}_0.${c}, p${s}_1.${c}, p${s}_2.${c}, p${s}_3.${c});`);
        }
      }
      return lines;
    });
  }

  private operand(x: 'A' | 'B') {
    return x === 'A'
      ? { kMajor: this.c.tA, W4: this.c.BM / 4, origin: 'm0', dim: 'M' }
      : { kMajor: !this.c.tB, W4: this.c.BN / 4, origin: 'n0', dim: 'N' };
  }

  /** Code per register slot, branching on whether this thread's block is A's, B's or none. */
  private perSlot(body: (slot: number, x: 'A' | 'B', block: string) => string[]): string {
    const { NT } = this.c;
    const total = this.blocksA + this.blocksB;
    const out: string[] = [];
    for (let s = 0; s < this.slots; s++) {
      const item = `lid + ${s * NT}`;
      out.push(`if (${item} < ${this.blocksA}) {`, ...body(s, 'A', `(${item})`).map((l) => `  ${l}`));
      out.push(`} else if (${item} < ${total}) {`, ...body(s, 'B', `(${item} - ${this.blocksA})`).map((l) => `  ${l}`), '}');
    }
    return out.join('\n    ');
  }
}

/** `loadX4(r, c, rows, cols)`: X's memory [rows, cols] at (r, c..c+3), zero outside. */
export function loadFn(x: 'A' | 'B', vec: boolean): string {
  if (vec) {
    return `fn load${x}4(r : i32, c : i32, rows : i32, cols : i32) -> vec4<f32> {
  if (r < rows && c < cols) { return ${x}[(r * cols + c) / 4]; }
  return vec4<f32>(0.0);
}`;
  }
  return `fn load${x}4(r : i32, c : i32, rows : i32, cols : i32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  if (r < rows) {
    let i = r * cols + c;
    if (c < cols) { v.x = ${x}[i]; }
    if (c + 1 < cols) { v.y = ${x}[i + 1]; }
    if (c + 2 < cols) { v.z = ${x}[i + 2]; }
    if (c + 3 < cols) { v.w = ${x}[i + 3]; }
  }
  return v;
}`;
}

export function biasFn(vec: boolean): string {
  if (vec) {
    return `fn loadBias4(c : i32, N : i32) -> vec4<f32> {
  if (c < N) { return Bias[c / 4]; }
  return vec4<f32>(0.0);
}`;
  }
  return `fn loadBias4(c : i32, N : i32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  if (c < N) { v.x = Bias[c]; }
  if (c + 1 < N) { v.y = Bias[c + 1]; }
  if (c + 2 < N) { v.z = Bias[c + 2]; }
  if (c + 3 < N) { v.w = Bias[c + 3]; }
  return v;
}`;
}

/** `storeC4(r, c, M, N, r0, v)`: C's row r (of M, stored at row r0 + r) at columns c..c+3 (of N). */
export function storeFn(vec: boolean): string {
  if (vec) {
    return `fn storeC4(r : i32, c : i32, M : i32, N : i32, r0 : i32, v : vec4<f32>) {
  if (r < M && c < N) { result[((r0 + r) * N + c) / 4] = v; }
}`;
  }
  return `fn storeC4(r : i32, c : i32, M : i32, N : i32, r0 : i32, v : vec4<f32>) {
  if (r < M) {
    let i = (r0 + r) * N + c;
    if (c < N) { result[i] = v.x; }
    if (c + 1 < N) { result[i + 1] = v.y; }
    if (c + 2 < N) { result[i + 2] = v.z; }
    if (c + 3 < N) { result[i + 3] = v.w; }
  }
}`;
}
