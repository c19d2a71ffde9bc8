import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, initBackend } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeCheckpoint, loadCheckpoint } from '../checkpoint/checkpoint.js';
import { readMetrics } from '../checkpoint/metrics.js';
import { trainTeacher } from './pipeline.js';
import { createEncoder, microPreset, syntheticData, VOCAB } from './test-fixtures.js';
import type { StageEvaluator } from './types.js';

const common = { preset: microPreset, data: syntheticData, createEncoder, vocabSize: VOCAB };
const PROBE = 'final_layer.linear.weight';
let root: string;

/** Scores a model by the sum of one weight, so a test can tell which weights it saw. */
function probe(every: number, seen: number[]): StageEvaluator {
  return {
    name: 'probe',
    every,
    run: async ({ model }, { step }) => {
      seen.push(step);
      const s = tf.sum(model.weights()[PROBE]!);
      const sum = (await s.data())[0]!;
      s.dispose();
      return { sum };
    },
  };
}

describe('in-training evaluation (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
    root = mkdtempSync(join(tmpdir(), 't2md-eval-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('scores the EMA weights every N steps and at the end, and leaves training exactly as without it', async () => {
    const overrides = { teacher: { steps: 7, checkpointEvery: 7, emaDecay: 0.9 } };
    const plain = join(root, 'plain');
    await trainTeacher({ ...common, overrides, out: plain });
    const seen: number[] = [];
    const withEval = join(root, 'eval');
    const before = tf.memory().numTensors;
    const shown: (number | undefined)[] = [];
    await trainTeacher({ ...common, overrides, out: withEval, evaluate: probe(3, seen), onProgress: (p) => shown.push(p.lastEval?.step) });
    expect(shown).toEqual([undefined, undefined, 3, 3, 3, 6, 7]); // the progress report carries the latest scores
    expect(tf.memory().numTensors).toBe(before);
    expect(seen).toEqual([3, 6, 7]);
    const lines = readMetrics(join(withEval, 'metrics.jsonl'));
    const evals = lines.filter((r) => r.eval === 'probe');
    expect(evals.map((r) => [r.step, r.stage])).toEqual([
      [3, 'teacher'],
      [6, 'teacher'],
      [7, 'teacher'],
    ]);
    // the training lines are byte-identical to the run without evaluation: the weights were put back
    // and no RNG draw was taken
    const train = lines.filter((r) => r.eval == null);
    expect(JSON.stringify(train)).toBe(JSON.stringify(readMetrics(join(plain, 'metrics.jsonl'))));
    // the last score is of the averaged weights, which differ from the trained ones
    const ckpt = loadCheckpoint(join(withEval, 'latest.safetensors'));
    const emaSum = (await tf.sum(ckpt.ema![`model.${PROBE}`]!).data())[0]!;
    const liveSum = (await tf.sum(ckpt.weights[`model.${PROBE}`]!).data())[0]!;
    disposeCheckpoint(ckpt);
    expect(Math.abs(emaSum - liveSum)).toBeGreaterThan(1e-4);
    expect(evals[2]!.sum).toBeCloseTo(emaSum, 5);
    expect(readFileSync(join(withEval, 'metrics.jsonl'), 'utf8')).toContain('"eval":"probe"');
  });

  it('refuses a bad interval with one sentence', async () => {
    const bad = { name: 'probe', every: 0, run: async () => ({}) };
    await expect(trainTeacher({ ...common, out: join(root, 'bad'), evaluate: bad })).rejects.toThrow(InputError);
    await expect(trainTeacher({ ...common, out: join(root, 'bad'), evaluate: bad })).rejects.toThrow(/evaluate.every/);
  });
});
