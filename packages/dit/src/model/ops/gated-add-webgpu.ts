import type { ElementwiseSpec } from '@t2md/core';

/**
 * out = x + gate · m on the shared elementwise helper, with the gate row `ada[n, gateIdx]` read at a
 * computed index — two integer divisions per vector, not per component. vec4 only when D % 4 == 0,
 * so a vector never straddles two rows of ada. Uniforms TD, D, K, gateIdx; x, m `[N, T, D]`, ada `[N, K, D]`.
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
