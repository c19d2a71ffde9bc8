import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { describeInfo, randomArray, useBackend, withNoLeaks } from './testing/index.js';
import { contiguousSliceOffset } from './webgpu-backend.js';

/** Program dispatches made by tfjs-webgpu while `fn` runs. */
async function dispatches(fn: () => Promise<void>): Promise<number> {
  const b = tf.backend() as unknown as { runWebGPUProgram: (...a: unknown[]) => unknown };
  const original = b.runWebGPUProgram;
  let n = 0;
  b.runWebGPUProgram = function (this: unknown, ...a: unknown[]) {
    n++;
    return original.apply(this, a);
  };
  try {
    await fn();
  } finally {
    b.runWebGPUProgram = original;
  }
  return n;
}

describe('contiguousSliceOffset', () => {
  it('finds the flat offset of a contiguous slice and refuses a strided one', () => {
    expect(contiguousSliceOffset([4, 5], [1, 0], [2, 5])).toBe(5);
    expect(contiguousSliceOffset([4, 5], [2, 1], [1, 3])).toBe(11); // one row's middle
    expect(contiguousSliceOffset([2, 3, 4], [1, 1, 0], [1, 2, 4])).toBe(16);
    expect(contiguousSliceOffset([4, 5], [0, 1], [2, 3])).toBeNull();
    expect(contiguousSliceOffset([2, 3, 4], [0, 0, 0], [2, 3, 2])).toBeNull();
  });
});

describe('tfjs-webgpu tuned for training loops', () => {
  it('uploads, slices and splits like tfjs (buffer copies where contiguous, programs elsewhere), without leaking', async (ctx) => {
    const info = await useBackend('webgpu', ctx);
    console.log(`copy kernels: running on ${describeInfo(info)}`);
    const v = randomArray(6 * 7 * 5, 3);
    const ints = Int32Array.from({ length: 24 }, (_, i) => i * 3 - 7);
    await withNoLeaks(async () => {
      // uploads through writeBuffer: float32, int32 and bool round-trip
      const x = tf.tensor(v, [6, 7, 5]);
      const k = tf.tensor(ints, [24], 'int32');
      const m = tf.tensor([true, false, true, true, false], [5], 'bool');
      const read = async (t: tf.Tensor) => {
        const d = Array.from(await t.data());
        t.dispose();
        return d;
      };
      expect(await read(tf.add(x, 0))).toEqual(Array.from(v));
      expect(await read(tf.add(k, 0))).toEqual(Array.from(ints));
      expect(await read(tf.logicalNot(m))).toEqual([0, 1, 0, 0, 1]);
      const at = (i: number, j: number, l: number) => v[(i * 7 + j) * 5 + l]!;
      // contiguous: rows 2..4 whole, and one row's middle; no program runs
      let a!: tf.Tensor;
      let c!: tf.Tensor;
      const n0 = await dispatches(async () => {
        a = tf.slice(x, [2, 0, 0], [3, 7, 5]);
        c = tf.slice(x, [1, 3, 0], [1, 2, 5]);
      });
      expect(n0).toBe(0);
      expect(Array.from(await a.data())).toEqual(Array.from(v.slice(2 * 35, 5 * 35)));
      expect(Array.from(await c.data())).toEqual(Array.from(v.slice(35 + 15, 35 + 25)));
      // strided: tfjs's program, same values
      const s = tf.slice(x, [0, 1, 2], [6, 2, 3]);
      const sv = await s.data();
      expect(sv[0]).toBe(at(0, 1, 2));
      expect(sv[sv.length - 1]).toBe(at(5, 2, 4));
      // splits along the first axis copy; along an inner axis they run programs
      let parts!: tf.Tensor[];
      const n1 = await dispatches(async () => {
        parts = tf.split(x, [1, 3, 2], 0);
      });
      expect(n1).toBe(0);
      expect(parts.map((p) => p.shape)).toEqual([
        [1, 7, 5],
        [3, 7, 5],
        [2, 7, 5],
      ]);
      expect(Array.from(await parts[2]!.data())).toEqual(Array.from(v.slice(4 * 35)));
      const inner = tf.split(x, [2, 5], 1);
      expect((await inner[1]!.data())[0]).toBe(at(0, 2, 0));
      const ks = tf.split(k, 3);
      expect(Array.from(await ks[1]!.data())).toEqual(Array.from(ints.slice(8, 16)));
      // a copy feeds later programs, and the source may be freed before the queue is submitted
      const y = tf.tidy(() => tf.slice(tf.mul(x, 2), [3, 0, 0], [1, 7, 5]));
      expect(await read(tf.add(y, 1))).toEqual(Array.from(v.slice(3 * 35, 4 * 35)).map((q) => Math.fround(q * 2 + 1)));
      tf.dispose([x, k, m, a, c, s, ...parts, ...inner, ...ks, y]);
    });
  });
});
