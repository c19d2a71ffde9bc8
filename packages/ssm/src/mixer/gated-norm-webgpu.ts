import type { WebGPUProgramSpec } from '@t2md/core';

/**
 * WGSL for the fused gated RMSNorm (no weight): a workgroup takes U consecutive (row, group) units of
 * S contiguous channels, one after the other. Each thread strides over a unit accumulating the sums the
 * workgroup tree-reduces, then the threads write their channels. U is chosen so that the dispatch stays
 * within one dimension's limit (65535 workgroups), and the unit index comes from the (uniform) workgroup
 * id: out-of-range units only skip their writes, so every barrier stays in uniform control flow.
 */
const WID = 'i32(workgroupId.x + workgroupId.y * numWorkgroups.x + workgroupId.z * numWorkgroups.x * numWorkgroups.y)';

const COMMON = `
fn sigm(v : f32) -> f32 {
  if (v >= 0.0) { return 1.0 / (1.0 + exp(-v)); }
  let e = exp(v);
  return e / (1.0 + e);
}
`;

/** Threads per workgroup for a unit of `S` channels (a power of two, at most 256). */
export function gatedNormWorkgroup(S: number): number {
  return S >= 1024 ? 256 : S >= 256 ? 128 : 64;
}

abstract class UnitProgram implements WebGPUProgramSpec {
  outputShape: number[];
  abstract shaderKey: string;
  dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  abstract variableNames: string[];
  uniforms = 'R : i32, S : i32, eps : f32, U : i32,';
  protected wg: number;

  /** @param U units per workgroup */
  constructor(R: number, S: number, U: number) {
    this.outputShape = [R, S];
    this.wg = gatedNormWorkgroup(S);
    this.workgroupSize = [this.wg, 1, 1];
    this.dispatch = [Math.ceil(R / U), 1, 1];
  }

  abstract getUserCode(): string;
}

/**
 * out = g / sqrt(mean_unit(g^2) + eps), g = y * silu(z). Inputs y, z `[R, S]`; with `shared`, z
 * `[M·J, S]` is one gate row per (m, j) shared by the k rows (m, 0..k-1, j) of y `[M·k·J, S]`
 * (uniforms K and J): the same arithmetic per row, so the bits of gating k copies of z.
 */
export class GatedNormProgram extends UnitProgram {
  shaderKey: string;
  variableNames = ['y', 'z'];
  private readonly shared: boolean;

  constructor(R: number, S: number, U: number, shared = false) {
    super(R, S, U);
    this.shared = shared;
    this.shaderKey = `t2md_gated_norm_${shared ? 'shared_' : ''}${this.wg}`;
    if (shared) this.uniforms += ' K : i32, J : i32,';
  }

  getUserCode(): string {
    const WG = this.wg;
    const zb = this.shared ? 'zbase' : 'base';
    const zLine = this.shared
      ? `
  let row = min(unit, uniforms.R - 1);
  let zbase = ((row / (uniforms.K * uniforms.J)) * uniforms.J + row % uniforms.J) * uniforms.S;`
      : '';
    return `${COMMON}
var<workgroup> red : array<f32, ${WG}>;
fn main(index : i32) {
  let lid = i32(localIndex);
  let wid = ${WID};
  for (var u = 0; u < uniforms.U; u++) {
  let unit = wid * uniforms.U + u;
  let live = unit < uniforms.R;
  let base = min(unit, uniforms.R - 1) * uniforms.S;${zLine}
  var acc = 0.0;
  for (var c = lid; c < uniforms.S; c += ${WG}) {
    let zv = z[${zb} + c];
    let g = y[base + c] * zv * sigm(zv);
    acc += g * g;
  }
  red[lid] = acc;
  workgroupBarrier();
  for (var k = ${WG / 2}; k > 0; k = k >> 1u) {
    if (lid < k) { red[lid] = red[lid] + red[lid + k]; }
    workgroupBarrier();
  }
  let r = inverseSqrt(red[0] / f32(uniforms.S) + uniforms.eps);
  if (live) {
    for (var c = lid; c < uniforms.S; c += ${WG}) {
      let zv = z[${zb} + c];
      result[base + c] = y[base + c] * zv * sigm(zv) * r;
    }
  }
  workgroupBarrier(); // red[0] is read above: the next unit may not overwrite it before everyone has
  }
}`;
  }
}

/**
 * Gradient of the fused norm with respect to y (`wrt = 'y'`) or z (`wrt = 'z'`), given dn = dL/d out:
 * dg = r dn - g r^3 mean(dn g); dy = dg silu(z); dz = dg y sigm(z) (1 + z (1 - sigm(z))).
 */
export class GatedNormGradProgram extends UnitProgram {
  shaderKey: string;
  variableNames = ['y', 'z', 'dn'];
  private wrt: 'y' | 'z';

  constructor(R: number, S: number, U: number, wrt: 'y' | 'z') {
    super(R, S, U);
    this.wrt = wrt;
    this.shaderKey = `t2md_gated_norm_grad_${wrt}_${this.wg}`;
  }

  getUserCode(): string {
    const WG = this.wg;
    const out = this.wrt === 'y' ? 'dg * zv * s' : 'dg * yv * s * (1.0 + zv * (1.0 - s))';
    return `${COMMON}
var<workgroup> red : array<vec2<f32>, ${WG}>;
fn main(index : i32) {
  let lid = i32(localIndex);
  let wid = ${WID};
  for (var u = 0; u < uniforms.U; u++) {
  let unit = wid * uniforms.U + u;
  let live = unit < uniforms.R;
  let base = min(unit, uniforms.R - 1) * uniforms.S;
  var acc = vec2<f32>(0.0, 0.0);
  for (var c = lid; c < uniforms.S; c += ${WG}) {
    let zv = z[base + c];
    let g = y[base + c] * zv * sigm(zv);
    acc += vec2<f32>(g * g, dn[base + c] * g);
  }
  red[lid] = acc;
  workgroupBarrier();
  for (var k = ${WG / 2}; k > 0; k = k >> 1u) {
    if (lid < k) { red[lid] = red[lid] + red[lid + k]; }
    workgroupBarrier();
  }
  let sums = red[0];
  let r = inverseSqrt(sums.x / f32(uniforms.S) + uniforms.eps);
  let k3 = r * r * r * sums.y / f32(uniforms.S);
  if (live) {
    for (var c = lid; c < uniforms.S; c += ${WG}) {
      let yv = y[base + c];
      let zv = z[base + c];
      let s = sigm(zv);
      let g = yv * zv * s;
      let dg = r * dn[base + c] - g * k3;
      result[base + c] = ${out};
    }
  }
  workgroupBarrier(); // red[0] is read above: the next unit may not overwrite it before everyone has
  }
}`;
  }
}
