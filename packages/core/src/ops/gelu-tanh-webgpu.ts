import { type ElementwiseSpec, vectorPrelude } from '../kernel/elementwise-program.js';
import { flatDispatch, type WebGPUProgramSpec } from '../kernel/webgpu-program.js';

// tanh through exp with a clamped argument: WGSL's tanh may return NaN for large |u| on some drivers,
// and tanh(10) already rounds to 1 in float32. Written over T (f32 or vec4<f32>).
const TANH = `
fn stableTanh(u : T) -> T {
  let e = exp(2.0 * clamp(u, T(-10.0), T(10.0)));
  return 1.0 - 2.0 / (e + 1.0);
}
const GELU_C : f32 = 0.7978845608028654;  // sqrt(2 / pi)
const GELU_K : f32 = 0.044715;
`;

/** y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
const FORWARD = `${TANH}
fn elementwise(e : i32, v : T) -> T {
  let t = stableTanh(GELU_C * (v + GELU_K * v * v * v));
  return 0.5 * v * (1.0 + t);
}`;

/** dx = dy · d gelu_tanh(x) / dx. */
const GRAD = `${TANH}
fn elementwise(e : i32, g : T, v : T) -> T {
  let t = stableTanh(GELU_C * (v + GELU_K * v * v * v));
  let du = GELU_C * (1.0 + 3.0 * GELU_K * v * v);
  return g * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du);
}`;

/** geluTanh forward on the shared elementwise helper (v2); x and y any shape. */
export const geluTanhSpec: ElementwiseSpec = { name: 'gelu_tanh', inputs: ['x'], code: FORWARD };

/** Its gradient (v2); dy, x and dx the same shape. */
export const geluTanhGradSpec: ElementwiseSpec = { name: 'gelu_tanh_grad', inputs: ['dy', 'x'], code: GRAD };

const WG = 256;

/**
 * v1 (kept for A/B under `T2MD_ELEMENTWISE=v1`): one f32 per thread through tfjs's generated
 * `get<Name>ByOutputIndex` getters, 256 threads a workgroup; tfjs folds more than 65,535
 * workgroups into a 2-D grid.
 */
class GeluV1Program implements WebGPUProgramSpec {
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  size = true;

  constructor(
    shape: number[],
    public shaderKey: string,
    public variableNames: string[],
    private readonly code: string,
  ) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = flatDispatch(
      shape.reduce((a, b) => a * b, 1),
      WG,
    );
  }

  getUserCode(): string {
    const args = this.variableNames.map((x) => `get${x[0]!.toUpperCase()}${x.slice(1)}ByOutputIndex(index)`).join(', ');
    return `${vectorPrelude(1)}
${this.code}
fn main(index : i32) {
  if (index < uniforms.size) {
    setOutputAtIndex(index, elementwise(index, ${args}));
  }
}`;
  }
}

/** v1 forward. */
export class GeluTanhProgram extends GeluV1Program {
  constructor(shape: number[]) {
    super(shape, 't2md_gelu_tanh', ['x'], FORWARD);
  }
}

/** v1 gradient. */
export class GeluTanhGradProgram extends GeluV1Program {
  constructor(shape: number[]) {
    super(shape, 't2md_gelu_tanh_grad', ['dy', 'x'], GRAD);
  }
}
