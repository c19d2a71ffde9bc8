import { flatDispatch, type WebGPUProgramSpec } from '../kernel/webgpu-program.js';

const WG = 256;

// tanh through exp with a clamped argument: WGSL's tanh may return NaN for large |u| on some drivers,
// and tanh(10) already rounds to 1 in float32.
const TANH = `
fn stableTanh(u : f32) -> f32 {
  let e = exp(2.0 * clamp(u, -10.0, 10.0));
  return 1.0 - 2.0 / (e + 1.0);
}
const GELU_C : f32 = 0.7978845608028654;  // sqrt(2 / pi)
const GELU_K : f32 = 0.044715;
`;

/** y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), elementwise over any shape. */
export class GeluTanhProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_gelu_tanh';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['x'];
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
    return `${TANH}
fn main(index : i32) {
  if (index < uniforms.size) {
    let x = getXByOutputIndex(index);
    let t = stableTanh(GELU_C * (x + GELU_K * x * x * x));
    setOutputAtIndex(index, 0.5 * x * (1.0 + t));
  }
}`;
  }
}

/** dx = dy * d gelu_tanh(x) / dx. */
export class GeluTanhGradProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey = 't2md_gelu_tanh_grad';
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['dy', 'x'];
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
    return `${TANH}
fn main(index : i32) {
  if (index < uniforms.size) {
    let x = getXByOutputIndex(index);
    let t = stableTanh(GELU_C * (x + GELU_K * x * x * x));
    let du = GELU_C * (1.0 + 3.0 * GELU_K * x * x);
    let g = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
    setOutputAtIndex(index, getDyByOutputIndex(index) * g);
  }
}`;
  }
}
