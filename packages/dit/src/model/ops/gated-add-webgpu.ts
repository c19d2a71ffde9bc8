import { type ElementwiseSpec, flatDispatch, type WebGPUProgramSpec } from '@t2md/core';

const WG = 256;

/** out = x + ada[n, gateIdx] · m, elementwise; x, m `[N, T, D]`, ada `[N, K, D]`. */
export class GatedAddProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_gated_add';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['xs', 'ms', 'ada'];
  uniforms = 'TD : i32, D : i32, K : i32, gateIdx : i32,';
  size = true;

  constructor(shape: number[]) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = flatDispatch(
      shape.reduce((a, b) => a * b, 1),
      WG,
    );
  }

  getUserCode(): string {
    return `
fn main(index : i32) {
  if (index < uniforms.size) {
    let n = index / uniforms.TD;
    let d = index % uniforms.D;
    result[index] = xs[index] + ada[(n * uniforms.K + uniforms.gateIdx) * uniforms.D + d] * ms[index];
  }
}`;
  }
}

/**
 * v2 (shared elementwise helper): out = x + gate · m with the gate row `ada[n, gateIdx]` read at a
 * computed index — two integer divisions per vector, not per component. vec4 only when D % 4 == 0,
 * so a vector never straddles two rows of ada. The same uniforms as v1: TD, D, K, gateIdx.
 */
export function gatedAddSpec(D: number): ElementwiseSpec {
  return {
    name: 'gated_add',
    inputs: ['xs', 'ms', 'ada'],
    gathered: ['ada'],
    uniforms: 'TD : i32, D : i32, K : i32, gateIdx : i32,',
    vec4: D % 4 === 0,
    code: `
fn elementwise(e : i32, x : T, m : T) -> T {
  let n = e / uniforms.TD;
  let d = e - (e / uniforms.D) * uniforms.D;
  return x + ada[((n * uniforms.K + uniforms.gateIdx) * uniforms.D + d) / VEC] * m;
}`,
  };
}
