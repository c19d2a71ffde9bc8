/**
 * A broken step stops the run (health.ts): a WebGPU error during training (forced here with an
 * oversized buffer on SwiftShader or a real adapter) and a non-finite loss each reject the run with a
 * TrainingFailedError, keep no metrics line for the broken step and write no model file.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, quietWebGPUErrors, takeWebGPUErrors } from '@t2md/core';
import { useBackend } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrainingFailedError } from './health.js';
import { trainTeacher } from './pipeline.js';
import { createEncoder, microPreset, syntheticData, VOCAB } from './test-fixtures.js';
import type { DataFactory } from './types.js';

let root: string;
const world = { createEncoder, vocabSize: VOCAB, preset: microPreset };
const overrides = { teacher: { steps: 25, logEvery: 5, checkpointEvery: 5 } };

/** The steps of the metrics lines a run kept. */
const loggedSteps = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).step as number);

describe('a broken training step stops the run', () => {
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 't2md-health-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('a non-finite loss rejects the run at its metrics line, after the last good checkpoint (cpu)', async () => {
    await initBackend({ backend: 'cpu' });
    // the synthetic images, turned to NaN from the 6th batch on
    const poisoned: DataFactory<{ index: number }> = (opts) => {
      const inner = syntheticData(opts);
      let batches = 0;
      return {
        async next(req) {
          const b = await inner.next(req);
          if (++batches < 6) return b;
          const nan = tf.fill(b.images.shape, Number.NaN);
          b.images.dispose();
          return { ...b, images: nan };
        },
      };
    };
    const out = join(root, 'nan');
    const run = trainTeacher({ ...world, data: poisoned, out, overrides });
    await expect(run).rejects.toThrow(TrainingFailedError);
    await expect(run).rejects.toThrow(/stage 'teacher' stopped at step 10: the loss is NaN/);
    await expect(run).rejects.toThrow(/start again from the last checkpoint with init and a lower lr\.$/); // the CLI's advice keys on it
    expect(loggedSteps(out)).toEqual([5]);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
    expect(existsSync(join(out, 'latest.safetensors'))).toBe(true); // step 5's checkpoint stays
  });

  it('a WebGPU error during training rejects the run with the error named (webgpu)', async (ctx) => {
    await useBackend('webgpu', ctx);
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    const out = join(root, 'gpu');
    quietWebGPUErrors(true);
    try {
      const run = trainTeacher({
        ...world,
        data: syntheticData,
        out,
        overrides,
        // at step 7, an allocation the device refuses, as an out-of-memory run's allocations are refused
        onProgress: (p) => {
          if (p.step === 7) device.createBuffer({ size: device.limits.maxBufferSize + 4, usage: GPUBufferUsage.STORAGE }).destroy();
        },
      });
      const err = await run.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TrainingFailedError);
      // the error event arrives with the device's next events; normally by step 10's read-back
      const m = /stage 'teacher' stopped at step (\d+): the WebGPU device reported 1 error\(s\), the first: ".*max buffer size/i.exec(
        (err as Error).message,
      );
      expect(m, (err as Error).message).not.toBeNull();
      // the phrase the CLI's flag advice keys on (packages/cli/src/errors.ts)
      expect((err as Error).message).toMatch(/free device memory \(fewer runs on the GPU, or recompute\) and resume the run\.$/);
      const at = Number(m![1]);
      expect(at).toBeGreaterThanOrEqual(10);
      expect(loggedSteps(out)).toEqual([5, 10, 15, 20].filter((s) => s < at)); // nothing from the broken step on
    } finally {
      quietWebGPUErrors(false);
    }
    expect(takeWebGPUErrors()).toEqual([]); // the run took them
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
  });
});
