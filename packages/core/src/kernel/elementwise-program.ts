import { ELEMENTWISE_DEFAULTS, type ElementwiseConfig } from './elementwise-config.js';
import type { WebGPUProgramSpec } from './webgpu-program.js';

/**
 * What an op gives `ElementwiseProgram`: its bindings and one WGSL function. The helper owns the
 * indexing, the vector width, the unrolling and the dispatch, so every elementwise op gets them alike.
 */
export interface ElementwiseSpec {
  /** Names the op in the pipeline cache key (the helper appends its layout). */
  name: string;
  /** Input bindings, in the order the kernel passes its tensors. */
  inputs: readonly string[];
  /**
   * Inputs that do NOT have the output's shape (broadcast rows such as adaLN's `ada`): bound, but read
   * by the op's own WGSL at an index it computes. Every other input is read at the output's index.
   */
  gathered?: readonly string[];
  /** Extra uniforms, as WGSL struct fields (`'D : i32, gateIdx : i32,'`). */
  uniforms?: string;
  /**
   * WGSL defining `fn elementwise(e : i32, <one T per same-shape input, in order>) -> T` and any
   * helpers. `T` is `f32` or `vec4<f32>` and `VEC` its width (1 or 4); `e` is the flat element index
   * of the first lane, so a gathered operand's element `j` (a multiple of VEC when VEC is 4) is
   * `buf[j / VEC]`. Write constants as `T(c)` where a builtin needs matching types (`clamp`, `max`).
   */
  code: string;
  /**
   * Whether vec4 access is allowed beyond `size % 4 == 0`, e.g. only when gathered rows start on a
   * multiple of 4 (default true).
   */
  vec4?: boolean;
}

/** The WGSL prelude shared by the programs of this helper: the value type and its width. */
export function vectorPrelude(vec: 1 | 4): string {
  return `alias T = ${vec === 4 ? 'vec4<f32>' : 'f32'};
const VEC : i32 = ${vec};
// sum of the lanes (reductions over a vec4 row)
fn lanesum(v : T) -> f32 { return ${vec === 4 ? 'dot(v, T(1.0))' : 'v'}; }`;
}

/**
 * A flat elementwise program over any shape: each thread moves `itemsPerThread` vectors per block,
 * its loads all issued before its stores (so several memory requests are in flight per thread),
 * `workgroupSize` apart (so a warp's accesses are contiguous), and the grid strides over blocks when
 * the size needs more than `maxWorkgroups` workgroups. Vectors are vec4 when the size is a multiple
 * of 4: a quarter of the load/store instructions of scalar f32 and 16-byte transactions per lane.
 * Indices go straight into the storage buffers: no index → coords → index round trip.
 */
export class ElementwiseProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames: string[];
  uniforms?: string;
  size = true;
  /** tfjs declares the output and every input as `array<vec4<f32>>` when these are 4. */
  outputComponent: number;
  variableComponents: number[];
  private readonly vec: 1 | 4;
  private readonly items: number;
  private readonly wg: number;

  constructor(
    private readonly spec: ElementwiseSpec,
    outputShape: number[],
    config: ElementwiseConfig = ELEMENTWISE_DEFAULTS,
  ) {
    const n = outputShape.reduce((a, b) => a * b, 1);
    this.vec = n % 4 === 0 && spec.vec4 !== false ? 4 : 1;
    this.items = config.itemsPerThread;
    this.wg = config.workgroupSize;
    this.outputShape = outputShape;
    this.variableNames = [...spec.inputs];
    if (spec.uniforms) this.uniforms = spec.uniforms;
    this.outputComponent = this.vec;
    this.variableComponents = spec.inputs.map(() => this.vec);
    this.workgroupSize = [this.wg, 1, 1];
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    const blocks = Math.ceil(n / this.vec / (this.wg * this.items));
    this.dispatch = [Math.max(1, Math.min(blocks, config.maxWorkgroups)), 1, 1];
    this.shaderKey = `t2md_ew_${spec.name}_v${this.vec}_i${this.items}_w${this.wg}`;
  }

  getUserCode(): string {
    const gathered = new Set(this.spec.gathered ?? []);
    const flat = this.spec.inputs.filter((x) => !gathered.has(x));
    const ks = Array.from({ length: this.items }, (_, k) => k);
    // uniforms.size counts vectors (tfjs divides it by outputComponent)
    const loads = ks.flatMap((k) => [
      `    let i${k} = base + ${k * this.wg};`,
      ...flat.map((x, j) => `    let v${j}_${k} = ${x}[min(i${k}, last)];`),
    ]);
    const stores = ks.map(
      (k) => `    if (i${k} < uniforms.size) { result[i${k}] = elementwise(i${k} * VEC, ${flat.map((_, j) => `v${j}_${k}`).join(', ')}); }`,
    );
    return `${vectorPrelude(this.vec)}
${this.spec.code}
fn main(index : i32) {
  let last = uniforms.size - 1;
  let block = ${this.wg * this.items};
  let step = i32(numWorkgroups.x) * block;
  for (var base = i32(workgroupId.x) * block + i32(localIndex); base < uniforms.size; base = base + step) {
${loads.join('\n')}
${stores.join('\n')}
  }
}`;
  }
}
