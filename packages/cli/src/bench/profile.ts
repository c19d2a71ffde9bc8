/**
 * Per-op time of one piece of work from tf.profile, shared by `bench train` and `bench sample`: GPU
 * timestamps per program on webgpu, wall time per kernel on wasm and cpu (kernels run synchronously).
 */
import * as tf from '@tensorflow/tfjs-core';
import { round } from './measure.js';

/** One op's share of a profiled piece of work. */
export interface OpTime {
  /** tfjs kernel name (`T2mdMatMul`, `Transpose`, ...), with the output shape in the detail list. */
  op: string;
  ms: number;
  /** Share of the summed kernel time. */
  share: number;
  calls: number;
}

/**
 * The summed kernel time of `fn`, the 10 costliest ops, and the 15 costliest (op, output shape) pairs
 * (the wrappers tf.customGrad records around real kernels left out).
 */
export async function profileOps(fn: () => Promise<void>): Promise<{ total: number; ops: OpTime[]; detail: OpTime[] }> {
  const info = await tf.profile(fn);
  const byOp = new Map<string, { ms: number; calls: number }>();
  const byShape = new Map<string, { ms: number; calls: number }>();
  let total = 0;
  for (const k of info.kernels) {
    // tf.customGrad runs its forward as one more "kernel" around the real ones (named 'unnamed scope',
    // or after the op, as tf.fused.matMul's 'fusedMatMul__op' around _FusedMatMul): counting it would
    // count their time twice
    if (k.name === 'unnamed scope' || k.name.endsWith('__op')) continue;
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    total += ms;
    const add = (m: Map<string, { ms: number; calls: number }>, key: string) => {
      const e = m.get(key) ?? { ms: 0, calls: 0 };
      e.ms += ms;
      e.calls += 1;
      m.set(key, e);
    };
    add(byOp, k.name);
    add(byShape, `${k.name} ${(k.outputShapes ?? []).map((s) => `[${(s ?? []).join(',')}]`).join(' ')}`);
  }
  const top = (m: Map<string, { ms: number; calls: number }>, n: number): OpTime[] =>
    [...m.entries()]
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, n)
      .map(([op, e]) => ({ op, ms: round(e.ms), share: round(total > 0 ? e.ms / total : 0), calls: e.calls }));
  return { total: round(total), ops: top(byOp, 10), detail: top(byShape, 15) };
}
