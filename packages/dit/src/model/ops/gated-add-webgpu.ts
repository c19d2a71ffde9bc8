import { flatDispatch, type WebGPUProgramSpec } from '@t2md/core';

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
