import { type ElementwiseSpec, vectorPrelude } from '../kernel/elementwise-program.js';
import { flatDispatch, type WebGPUProgramSpec } from '../kernel/webgpu-program.js';

// 0.5·x·(1 + tanh(u)) = x·σ(2u), u = √(2/π)(x + 0.044715x³), with σ(2u) and σ(−2u) = 1 − σ(2u) both
// taken from e = exp(−2|u|) ∈ (0, 1]: nothing overflows, nothing cancels (1 + tanh(u) for u ≪ 0 and
// 1 − tanh² lose every digit in float32), and no adapter's tanh is trusted (WGSL's may return NaN for
// large |u| on some drivers). Accurate to a few ulps of x for any x, relative to y itself while exp is.
// Written over T (f32 or vec4<f32>).
const PRELUDE = `
const GELU_C : f32 = 0.7978845608028654;  // sqrt(2 / pi)
const GELU_K : f32 = 0.044715;
`;

/** y = x · σ(2u). */
const FORWARD = `${PRELUDE}
fn elementwise(e : i32, v : T) -> T {
  let u = GELU_C * (v + GELU_K * v * v * v);
  let a = exp(-2.0 * abs(u));
  let r = 1.0 / (1.0 + a);
  return v * select(a * r, r, u >= T(0.0));
}`;

/** dx = dy · (σ(2u) + 2x·σ(2u)·σ(−2u)·du/dx). */
const GRAD = `${PRELUDE}
fn elementwise(e : i32, g : T, v : T) -> T {
  let u = GELU_C * (v + GELU_K * v * v * v);
  let a = exp(-2.0 * abs(u));
  let r = 1.0 / (1.0 + a);
  let pos = u >= T(0.0);
  let s = select(a * r, r, pos);
  let sc = select(r, a * r, pos);
  let du = GELU_C * (1.0 + 3.0 * GELU_K * v * v);
  return g * (s + 2.0 * v * s * sc * du);
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
