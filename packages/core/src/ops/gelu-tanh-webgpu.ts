import type { ElementwiseSpec } from '../kernel/elementwise-program.js';

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

/** geluTanh forward on the shared elementwise helper; x and y any shape. */
export const geluTanhSpec: ElementwiseSpec = { name: 'gelu_tanh', inputs: ['x'], code: FORWARD };

/** Its gradient; dy, x and dx the same shape. */
export const geluTanhGradSpec: ElementwiseSpec = { name: 'gelu_tanh_grad', inputs: ['dy', 'x'], code: GRAD };
