import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend, quietWebGPUErrors, takeWebGPUErrors } from './backend.js';
import { deviceMemory, releaseFreeBuffers, resetDevicePeak, webgpuIdle } from './device-memory.js';
import { describeInfo, useBackend, withNoLeaks } from './testing/index.js';
import {
  applyDeferredFreeEnv,
  applyPoolEnv,
  DEFERRED_FREE_LIMIT,
  deferredFreeLimit,
  POOL_LIMIT,
  poolLimit,
  setDeferredFreeLimit,
  setPoolLimit,
} from './webgpu-backend.js';

describe('device memory', () => {
  it('is null off webgpu, where there is no pool to release', async (ctx) => {
    await useBackend('cpu', ctx);
    expect(deviceMemory()).toBeNull();
    expect(releaseFreeBuffers()).toBe(0);
    await webgpuIdle(); // a no-op
  });

  it('counts the pool that tf.memory() does not, keeps the peak, and releases the pool', async (ctx) => {
    const info = await useBackend('webgpu', ctx);
    console.log(`device memory: running on ${describeInfo(info)}`);
    await webgpuIdle();
    releaseFreeBuffers();
    const base = deviceMemory()!;
    expect(base.poolBytes).toBe(0);
    resetDevicePeak();
    expect(deviceMemory()!.peakBytes).toBe(base.allocatedBytes);
    const n = 64 * 1024; // 256 KiB per tensor: a size nothing else in this process allocates
    await withNoLeaks(async () => {
      const a = tf.fill([n], 1.5); // made on the GPU
      const b = tf.add(a, 1);
      expect((await b.data())[n - 1]).toBe(2.5);
      tf.dispose([a, b]);
    });
    await webgpuIdle();
    const after = deviceMemory()!;
    // both tensors' buffers went back to the pool: the device still holds them, tf.memory() does not
    expect(after.poolBytes).toBeGreaterThanOrEqual(2 * 4 * n);
    expect(after.allocatedBytes - base.allocatedBytes).toBeGreaterThanOrEqual(2 * 4 * n);
    expect(after.peakBytes).toBeGreaterThanOrEqual(after.allocatedBytes);
    const freed = releaseFreeBuffers();
    expect(freed).toBe(after.poolBytes);
    const released = deviceMemory()!;
    expect(released.poolBytes).toBe(0);
    expect(released.allocatedBytes).toBe(after.allocatedBytes - freed);
    expect(released.peakBytes).toBe(after.peakBytes); // the peak stays until reset
    resetDevicePeak();
    expect(deviceMemory()!.peakBytes).toBe(released.allocatedBytes);
  });

  it('keeps an oversized buffer’s validation error (quietly) for takeWebGPUErrors', async (ctx) => {
    await useBackend('webgpu', ctx);
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    takeWebGPUErrors();
    quietWebGPUErrors(true);
    try {
      const b = device.createBuffer({ size: device.limits.maxBufferSize + 4, usage: GPUBufferUsage.STORAGE });
      b.destroy();
      await webgpuIdle();
    } finally {
      quietWebGPUErrors(false);
    }
    const errors = takeWebGPUErrors();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/max buffer size/i);
    expect(takeWebGPUErrors()).toEqual([]); // taken once
  });
});

describe('the early submit of disposed tensors (setDeferredFreeLimit)', () => {
  /** The device peak of a chain of 40 elementwise ops, each result disposed once the next is recorded. */
  async function chainPeak(limit: number): Promise<number> {
    setDeferredFreeLimit(limit);
    try {
      const x = tf.fill([64 * 1024], 0.5); // 256 KiB, made on the GPU
      await webgpuIdle();
      releaseFreeBuffers();
      resetDevicePeak();
      const start = deviceMemory()!.allocatedBytes;
      await withNoLeaks(async () => {
        let y = tf.add(x, 1);
        for (let i = 0; i < 40; i++) {
          const next = tf.mul(y, 0.5); // records a dispatch that reads y: y's buffer waits for the submit
          y.dispose();
          y = next;
        }
        expect((await y.data())[0]).toBeCloseTo(1.5 * 0.5 ** 40, 20);
        y.dispose();
      });
      x.dispose();
      return deviceMemory()!.peakBytes - start;
    } finally {
      setDeferredFreeLimit(DEFERRED_FREE_LIMIT);
    }
  }

  it('bounds the dead buffers a submit batch holds, with the same result', async (ctx) => {
    await useBackend('webgpu', ctx);
    const tfjs = await chainPeak(Number.POSITIVE_INFINITY); // tfjs's own: every disposed buffer waits for the 64th dispatch
    const early = await chainPeak(512 * 1024); // a submit once two dead 256 KiB buffers wait and the pool has none free
    const dflt = await chainPeak(DEFERRED_FREE_LIMIT); // 1 GiB: never reached by 10 MiB of work
    console.log(`device peak of the chain: ${tfjs} bytes as tfjs, ${early} with a 512 KiB limit, ${dflt} with the default`);
    expect(tfjs).toBeGreaterThanOrEqual(30 * 256 * 1024); // ~41 buffers of 256 KiB allocated at once
    expect(early).toBeLessThanOrEqual(8 * 256 * 1024); // a handful
    expect(dflt).toBe(tfjs); // small work runs as tfjs runs it
    expect(() => setDeferredFreeLimit(-1)).toThrow(/the deferred-free limit must be a number of bytes/);
  });
});

describe('T2MD_DEFERRED_FREE_MB', () => {
  it('is checked by initBackend before WebGPU starts, in one sentence', async () => {
    process.env.T2MD_DEFERRED_FREE_MB = 'lots';
    try {
      await expect(initBackend({ backend: 'webgpu' })).rejects.toThrow(
        /^T2MD_DEFERRED_FREE_MB must be a number of MiB ≥ 0 \(or Infinity\), got 'lots'\.$/,
      );
    } finally {
      delete process.env.T2MD_DEFERRED_FREE_MB;
    }
  });

  it('sets the limit in MiB, Infinity turning the early submit off', () => {
    expect(deferredFreeLimit()).toBe(2 ** 30); // the default: 1 GiB
    try {
      for (const [raw, bytes] of [
        ['256', 256 * 2 ** 20],
        ['Infinity', Number.POSITIVE_INFINITY],
        ['', Number.POSITIVE_INFINITY], // unset: the limit stays as it was
      ] as const) {
        process.env.T2MD_DEFERRED_FREE_MB = raw;
        applyDeferredFreeEnv();
        expect(deferredFreeLimit()).toBe(bytes);
      }
    } finally {
      delete process.env.T2MD_DEFERRED_FREE_MB;
      setDeferredFreeLimit(DEFERRED_FREE_LIMIT);
    }
  });
});

describe('T2MD_POOL_MB', () => {
  it('is checked by initBackend before WebGPU starts, in one sentence', async () => {
    process.env.T2MD_POOL_MB = '-3';
    try {
      await expect(initBackend({ backend: 'webgpu' })).rejects.toThrow(
        /^T2MD_POOL_MB must be a number of MiB ≥ 0 \(or Infinity\), got '-3'\.$/,
      );
    } finally {
      delete process.env.T2MD_POOL_MB;
    }
  });

  it('sets the pool limit in MiB (default: none)', () => {
    expect(poolLimit()).toBe(Number.POSITIVE_INFINITY);
    try {
      process.env.T2MD_POOL_MB = '1024';
      applyPoolEnv();
      expect(poolLimit()).toBe(2 ** 30);
    } finally {
      delete process.env.T2MD_POOL_MB;
      setPoolLimit(POOL_LIMIT);
    }
  });
});
