// Its own file (vitest runs each file in a fresh process): a dry run cannot go back to real work.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { deviceMemory, releaseFreeBuffers, resetDevicePeak, webgpuIdle } from '../device-memory.js';
import { setDeferredFreeLimit } from '../webgpu-backend.js';
import { DRY_RUN_LIMITS, dryRunWebGPU } from './dry-webgpu.js';
import { useBackend } from './index.js';

/**
 * Allocations of mixed sizes, disposals that wait for a submit, an early submit, uploads and a
 * readback: the device peak above what was allocated before, and the last value read.
 */
async function workload(): Promise<{ peak: number; last: number; length: number }> {
  await webgpuIdle();
  releaseFreeBuffers();
  resetDevicePeak();
  const start = deviceMemory()!.allocatedBytes;
  setDeferredFreeLimit(3 * 256 * 1024);
  try {
    const x = tf.tensor1d(new Float32Array(64 * 1024).fill(0.5)); // uploaded
    let y = tf.add(x, 1);
    for (let i = 0; i < 40; i++) {
      const wide = tf.concat([y, y]); // another size in the pool
      const next = tf.mul(tf.slice(wide, [64 * 1024], [64 * 1024]), 0.5);
      tf.dispose([wide, y]);
      y = next;
    }
    const v = await y.data();
    tf.dispose([x, y]);
    await webgpuIdle();
    return { peak: deviceMemory()!.peakBytes - start, last: v[v.length - 1]!, length: v.length };
  } finally {
    setDeferredFreeLimit(2 ** 30);
  }
}

describe('dryRunWebGPU', () => {
  it('counts the allocations a real run makes, exactly, while running nothing', async (ctx) => {
    await useBackend('webgpu', ctx);
    const real = await workload();
    expect(real.last).toBeCloseTo(1.5 * 0.5 ** 40, 20);
    const stats = dryRunWebGPU();
    expect(tf.backend() as unknown as { device: GPUDevice }).toHaveProperty(
      'device.limits.maxStorageBufferBindingSize',
      DRY_RUN_LIMITS.maxStorageBufferBindingSize,
    );
    const dry = await workload();
    console.log(`device peak of the workload: ${real.peak} bytes run, ${dry.peak} dry; dry run: ${JSON.stringify(stats)}`);
    expect(dry.peak).toBe(real.peak);
    expect(real.peak).toBeGreaterThan(3 * 256 * 1024); // the workload did allocate
    expect(dry).toMatchObject({ last: 0, length: 64 * 1024 }); // reads are zeros of the right length
    expect(stats.dispatches).toBeGreaterThanOrEqual(80);
    expect(stats.submits).toBeGreaterThan(0);
    expect(stats.createdBuffers).toBeGreaterThan(0);
  });

  it('needs the webgpu backend', async (ctx) => {
    await useBackend('cpu', ctx);
    expect(() => dryRunWebGPU()).toThrow(/needs the webgpu backend, not cpu/);
  });
});
