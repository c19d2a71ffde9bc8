import { DEFERRED_FREE_LIMIT, deviceMemory, releaseFreeBuffers, resetDevicePeak, setDeferredFreeLimit, webgpuIdle } from '@t2md/core';
import { describeInfo, freshSeed, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createDiT } from './dit.js';
import { tinyStudent } from './presets.js';
import { perturb, randomInputs } from './test-helpers.js';

// WebGPU's early submit (setDeferredFreeLimit) runs in the middle of a forward, wherever tfjs asks its
// pool for a buffer it has no free one of: before a kernel's output, its uniforms, an upload or a buffer
// copy. Submitting there must not change a single number.
describe('the early submit inside a DiT forward (webgpu)', () => {
  it('gives the same output bit for bit with a submit at every pool miss, and a lower device peak', async (ctx) => {
    const info = await useBackend('webgpu', ctx);
    console.log(`early submit: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    const model = createDiT({ ...tinyStudent, learnSigma: true });
    perturb(model, seed);
    const inp = randomInputs(model, 2, 8, 8, seed);
    const forward = async (limit: number) => {
      setDeferredFreeLimit(limit);
      try {
        await webgpuIdle();
        releaseFreeBuffers();
        resetDevicePeak();
        const start = deviceMemory()!.allocatedBytes;
        const out = await withNoLeaks(async () => {
          const o = model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask });
          const v = (await o.data()) as Float32Array;
          o.dispose();
          return v;
        });
        return { out, peak: deviceMemory()!.peakBytes - start };
      } finally {
        setDeferredFreeLimit(DEFERRED_FREE_LIMIT);
      }
    };
    try {
      tf.dispose(model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask })); // makes the model's caches (positions, scan orders)
      const tfjs = await forward(Number.POSITIVE_INFINITY);
      const early = await forward(0);
      console.log(`early submit (seed ${seed}): device peak ${tfjs.peak} bytes as tfjs, ${early.peak} submitting at every miss`);
      expect(early.out).toEqual(tfjs.out);
      expect(tfjs.out.every(Number.isFinite)).toBe(true);
      expect(early.peak).toBeLessThan(tfjs.peak);
    } finally {
      inp.dispose();
      model.dispose();
    }
  });
});
