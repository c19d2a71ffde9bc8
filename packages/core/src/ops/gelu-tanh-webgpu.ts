import type { ElementwiseSpec } from '../kernel/elementwise-program.js';

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

/** geluTanh forward on the shared elementwise helper; x and y any shape. */
export const geluTanhSpec: ElementwiseSpec = { name: 'gelu_tanh', inputs: ['x'], code: FORWARD };

/** Its gradient; dy, x and dx the same shape. */
export const geluTanhGradSpec: ElementwiseSpec = { name: 'gelu_tanh_grad', inputs: ['dy', 'x'], code: GRAD };
