import { deviceMemory, POOL_LIMIT, poolLimit, releaseFreeBuffers, resetDevicePeak, setPoolLimit, webgpuIdle } from '@t2md/core';
import { describeInfo, freshSeed, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createDiT } from './dit.js';
import { tinyStudent } from './presets.js';
import { perturb, randomInputs } from './test-helpers.js';

// setPoolLimit: at a pool miss, a pool holding more free bytes than the limit is emptied before a new
// buffer is made. Freeing pooled buffers must not change a single number, and after a forward at
// another size (whose buffers fit nothing now) it must lower the device peak.
describe('the pool limit around DiT forwards (webgpu)', () => {
  it('gives the same output bit for bit and a lower device peak after a forward at another size', async (ctx) => {
    const info = await useBackend('webgpu', ctx);
    console.log(`pool limit: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    const model = createDiT(tinyStudent);
    perturb(model, seed);
    const small = randomInputs(model, 2, 8, 8, seed);
    const large = randomInputs(model, 2, 16, 16, seed + 1);
    const forward = async (limit: number) => {
      setPoolLimit(limit);
      try {
        await webgpuIdle();
        releaseFreeBuffers();
        // the large forward leaves its buffers in the pool; then the small one is measured
        const o = model.forward(large.x, large.t, large.y, { yMask: large.yMask });
        await o.data();
        o.dispose();
        await webgpuIdle();
        resetDevicePeak();
        const start = deviceMemory()!.allocatedBytes;
        const out = await withNoLeaks(async () => {
          const s = model.forward(small.x, small.t, small.y, { yMask: small.yMask });
          const v = (await s.data()) as Float32Array;
          s.dispose();
          return v;
        });
        await webgpuIdle();
        return { out, peak: deviceMemory()!.peakBytes, start };
      } finally {
        setPoolLimit(POOL_LIMIT);
      }
    };
    try {
      for (const inp of [small, large]) tf.dispose(model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask })); // caches
      const tfjs = await forward(POOL_LIMIT);
      const capped = await forward(0);
      console.log(
        `pool limit (seed ${seed}): device peak ${tfjs.peak} bytes with tfjs's pool (${tfjs.start} before the forward), ${capped.peak} emptying it at a miss`,
      );
      expect(capped.out).toEqual(tfjs.out);
      expect(tfjs.out.every(Number.isFinite)).toBe(true);
      expect(capped.peak).toBeLessThan(tfjs.peak);
      expect(poolLimit()).toBe(Number.POSITIVE_INFINITY);
      expect(() => setPoolLimit(-1)).toThrow(/pool limit must be a number of bytes/);
    } finally {
      small.dispose();
      large.dispose();
      model.dispose();
    }
  }, 300_000);
});
