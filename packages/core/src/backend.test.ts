import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { listAdaptersInChild } from './adapters.js';
import { backendReport, initBackend } from './backend.js';
import { InputError } from './errors.js';
import { describeInfo, tryBackend, useBackend } from './testing/index.js';
import { WASM_MAX_MEMORY, wasmMemoryBytes } from './wasm-threads.js';

describe('initBackend', () => {
  const saved = process.env.T2MD_BACKEND;
  afterEach(() => {
    if (saved == null) delete process.env.T2MD_BACKEND;
    else process.env.T2MD_BACKEND = saved;
  });

  it.each(['cpu', 'wasm'] as const)('starts %s on request and reports it as software', async (name) => {
    const info = await initBackend({ backend: name });
    expect(info).toEqual({ backend: name, software: true });
    expect(tf.getBackend()).toBe(name);
  });

  it("reads the wasm backend's linear memory, which grows with what it holds and stays within 4 GiB", async () => {
    await initBackend({ backend: 'wasm' });
    const before = wasmMemoryBytes()!;
    expect(before).toBeGreaterThanOrEqual(16 * 2 ** 20); // tfjs's initial 16 MiB
    const big = tf.zeros([2 ** 26]); // 256 MiB
    await big.data();
    expect(wasmMemoryBytes()).toBeGreaterThanOrEqual(2 ** 28);
    expect(wasmMemoryBytes()).toBeLessThanOrEqual(WASM_MAX_MEMORY);
    big.dispose();
  });

  it('starts webgpu on request and names its adapter', async (ctx) => {
    // skipped, with the reason, where there is no adapter (a failure under T2MD_REQUIRE_WEBGPU=1); the
    // CLI's info test checks that a request for a missing adapter fails with one line
    const info = await useBackend('webgpu', ctx);
    console.log(`initBackend: webgpu adapter ${describeInfo(info)}`);
    expect(info.backend).toBe('webgpu');
    expect(info.adapter?.vendor).toBeTypeOf('string');
    expect(tf.getBackend()).toBe('webgpu');
    if (info.adapter?.architecture === 'swiftshader') expect(info.software).toBe(true);
  });

  it('auto passes a software adapter over and never picks it', async () => {
    const gpu = await tryBackend('webgpu');
    const info = await initBackend({ backend: 'auto' });
    if (gpu == null || gpu.software) expect(info.backend).toBe('wasm');
    else expect(info.backend).toBe('webgpu');
  });

  it('lets T2MD_BACKEND override auto but not an explicit choice', async () => {
    process.env.T2MD_BACKEND = 'cpu';
    expect((await initBackend()).backend).toBe('cpu');
    expect((await initBackend({ backend: 'wasm' })).backend).toBe('wasm');
  });

  it('rejects an unknown backend name with one clear error', async () => {
    process.env.T2MD_BACKEND = 'cuda';
    await expect(initBackend()).rejects.toThrow(new InputError("T2MD_BACKEND must be one of auto, webgpu, wasm, cpu, got 'cuda'."));
    delete process.env.T2MD_BACKEND;
    await expect(initBackend({ backend: 'gpu' as 'cpu' })).rejects.toThrow(/backend must be one of auto, webgpu, wasm, cpu, got 'gpu'/);
  });

  it('reports what was asked for, where that came from, and why', async () => {
    await initBackend({ backend: 'cpu' });
    expect(backendReport()).toEqual({
      requested: 'cpu',
      from: 'option',
      backend: 'cpu',
      adapters: [],
      reason: 'cpu was asked for.',
      log: [],
    });
    process.env.T2MD_BACKEND = 'wasm';
    await initBackend();
    expect(backendReport()).toMatchObject({ requested: 'wasm', from: 'T2MD_BACKEND', reason: 'wasm was asked for by T2MD_BACKEND.' });
    delete process.env.T2MD_BACKEND;
    const info = await initBackend();
    const report = backendReport()!;
    expect(report).toMatchObject({ requested: 'auto', from: 'default', backend: info.backend });
    expect(report.reason).toMatch(info.backend === 'webgpu' ? /^auto took the hardware WebGPU adapter / : /^auto took (wasm|cpu): /);
    for (const a of report.adapters)
      expect(a).toEqual({
        vendor: expect.any(String),
        architecture: expect.any(String),
        description: expect.any(String),
        software: expect.any(Boolean),
      });
    if (report.adapters.length > 0 && report.adapters.every((a) => a.software))
      expect(report.reason).toMatch(/only WebGPU adapter is software/);
  });

  it('lists adapters from a child process, keeping what the drivers print as a log', async () => {
    const saved = process.env.VK_ICD_FILENAMES;
    process.env.VK_ICD_FILENAMES = '/nonexistent/icd.json'; // no Vulkan driver at all: the loader complains
    try {
      const list = await listAdaptersInChild();
      expect(list.adapters).toEqual([]);
      expect(list.problem).toBeUndefined(); // the child ran and answered: no adapter is an answer, not a failure
      expect(list.log.length).toBeGreaterThan(0);
    } finally {
      if (saved == null) delete process.env.VK_ICD_FILENAMES;
      else process.env.VK_ICD_FILENAMES = saved;
    }
  });

  it('registers the gradient of every tfjs-core op it resolves with', async () => {
    await initBackend({ backend: 'cpu' });
    const f = (x: tf.Tensor) => tf.sum(tf.mul(tf.softplus(tf.matMul(x, tf.transpose(x))), tf.sigmoid(tf.cumsum(tf.mean(x, 1)))));
    const x = tf.tensor([
      [0.1, -0.2],
      [0.3, 0.4],
    ]);
    const g = tf.grad(f)(x);
    // central differences
    const xv = await x.data();
    const eps = 1e-2;
    const gv = await g.data();
    for (let i = 0; i < 4; i++) {
      const p = Float32Array.from(xv);
      const m = Float32Array.from(xv);
      p[i] += eps;
      m[i] -= eps;
      const fp = (await f(tf.tensor(p, [2, 2])).data())[0];
      const fm = (await f(tf.tensor(m, [2, 2])).data())[0];
      expect(gv[i]).toBeCloseTo((fp - fm) / (2 * eps), 2);
    }
  });
});
