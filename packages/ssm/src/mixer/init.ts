import type { Rng } from '@t2md/core';
import { type Mamba2Config, mamba2Dims, mamba2WeightShapes } from './config.js';

/**
 * Fresh Mamba-2 weights as mamba_ssm's `Mamba2.__init__` makes them, every number drawn from `rng`:
 * - in_proj, out_proj: PyTorch's Linear default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt 5);
 * - conv1d weight and bias: PyTorch's Conv1d default, the same bound with fan_in = d_conv (depthwise: 1 channel in);
 * - dt_bias = softplus^-1(dt), dt = exp(U[log dtMin, log dtMax]) floored at dtInitFloor;
 * - A_log = log U[1, 16]; D = 1; norm.weight = 1.
 */
export function initMamba2Weights(c: Required<Mamba2Config>, rng: Rng): Record<string, Float32Array> {
  const shapes = mamba2WeightShapes(c);
  const { dInner, nheads, convDim, dInProj } = mamba2Dims(c);
  const linear = (n: number, fanIn: number) => {
    const bound = 1 / Math.sqrt(fanIn);
    return rng.uniforms(n, -bound, bound);
  };
  const w: Record<string, Float32Array> = {};
  w['in_proj.weight'] = linear(dInProj * c.dModel, c.dModel);
  w['conv1d.weight'] = linear(convDim * c.dConv, c.dConv);
  w['conv1d.bias'] = linear(convDim, c.dConv);
  w.dt_bias = new Float32Array(nheads);
  const [logMin, logMax] = [Math.log(c.dtMin), Math.log(c.dtMax)];
  for (let h = 0; h < nheads; h++) {
    const dt = Math.max(Math.exp(logMin + rng.next() * (logMax - logMin)), c.dtInitFloor);
    w.dt_bias[h] = softplusInverse(dt);
  }
  w.A_log = new Float32Array(nheads);
  for (let h = 0; h < nheads; h++) w.A_log[h] = Math.log(c.aInitRange[0] + rng.next() * (c.aInitRange[1] - c.aInitRange[0]));
  w.D = new Float32Array(nheads).fill(1);
  w['norm.weight'] = new Float32Array(dInner).fill(1);
  w['out_proj.weight'] = linear(c.dModel * dInner, dInner);
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (w[name]?.length !== n) throw new Error(`internal: ${name} has ${w[name]?.length} values, want ${n}`);
  }
  return w;
}

/** softplus^-1(y) = y + log(-expm1(-y)) = log(exp(y) - 1), written so small y keeps its precision. */
export function softplusInverse(y: number): number {
  return y + Math.log(-Math.expm1(-y));
}
