import { deviceMemory, releaseFreeBuffers, webgpuIdle } from '@t2md/core';
import { describeInfo, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { type ModelFn, sample } from './sample.js';

/** A toy denoiser with a few activation-sized intermediates per call, like a network's. */
const model: ModelFn = (x) => tf.tidy(() => tf.mul(tf.tanh(tf.add(tf.mul(x, 0.5), 0.1)), 0.2));

/** Largest first: without a release the smaller sizes' buffers (other sizes) pile up on top of it. */
const SIZES = [24, 8, 16];

/** Device bytes tfjs holds after sampling at each size in turn (one process), above what it held before. */
async function bytesAfter(releaseBuffers: 'shape' | 'never'): Promise<number[]> {
  await webgpuIdle();
  releaseFreeBuffers();
  const base = deviceMemory()!.allocatedBytes;
  const out: number[] = [];
  for (const side of SIZES) {
    await withNoLeaks(async () => {
      const x = await sample({ model, sampler: 'dpmpp-2m', steps: 3, shape: [1, 4, side, side], seed: side, releaseBuffers });
      expect(Number.isFinite((await x.data())[0]!)).toBe(true);
      x.dispose();
    });
    await webgpuIdle(); // every buffer the call freed is back in the pool
    out.push(deviceMemory()!.allocatedBytes - base);
  }
  return out;
}

describe('sample() on WebGPU returns the pool of an old size to the device', () => {
  it('three sizes in one process hold no more than the largest one did (and tfjs alone holds more)', async (ctx) => {
    const info = await useBackend('webgpu', ctx);
    console.log(`release buffers: running on ${describeInfo(info)}`);
    const kept = await bytesAfter('never');
    const bounded = await bytesAfter('shape');
    console.log(`device bytes after ${SIZES.join(', ')} px: never ${kept.join(', ')}; shape ${bounded.join(', ')}`);
    // the same work allocates the same buffers: the first size is alike either way
    expect(bounded[0]).toBe(kept[0]);
    expect(bounded[0]).toBeGreaterThan(4 * 4 * 24 * 24); // at least one latent-sized buffer pooled
    // by default a new size starts from an empty pool: after the third size the device holds the
    // third size's working set, under the largest size's
    expect(bounded[2]).toBeLessThanOrEqual(bounded[0]!);
    // tfjs's own pool keeps every size's buffers: more than the largest size alone
    expect(kept[2]).toBeGreaterThan(kept[0]!);
    releaseFreeBuffers();
  });

  it('refuses an unknown releaseBuffers with a sentence naming the choices', async () => {
    await expect(sample({ model, sampler: 'ddim', steps: 1, shape: [1, 2], releaseBuffers: 'sometimes' as never })).rejects.toThrow(
      "releaseBuffers must be one of 'shape', 'always', 'never', got \"sometimes\".",
    );
  });
});
