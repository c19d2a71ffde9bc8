import { initBackend } from '@t2md/core';
import { withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { CAPTION_ENCODER_PREFIX, captionEncoderFromTensors, captionEncoderWeightShapes, createCaptionEncoder } from './text-encoder.js';

const config = { vocabSize: 12, maxLength: 6, dim: 8, layers: 2, heads: 2, seed: 3 };

describe('CaptionEncoder (cpu)', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it('encodes [B, L] tokens to [B, L, D]; padding changes no real token; no leaks', async () => {
    const enc = createCaptionEncoder(config);
    const tokens = tf.tensor2d(
      [
        [1, 5, 7, 0, 0, 0],
        [1, 5, 7, 9, 11, 2],
      ],
      [2, 6],
      'int32',
    );
    const mask = tf.tensor2d(
      [
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
      ],
      [2, 6],
      'bool',
    );
    await withNoLeaks(async () => {
      const y = enc.encode(tokens, mask);
      expect(y.shape).toEqual([2, 6, 8]);
      const v = (await y.data()) as Float32Array;
      // Rows 0..2 of both captions are the same real tokens; what sits in masked slots must not matter.
      for (let i = 0; i < 3 * 8; i++) expect(v[48 + i]).toBeCloseTo(v[i], 5);
      // The final LayerNorm (weight 1, bias 0 at init) leaves each token with mean 0 and unit variance.
      let mean = 0;
      for (let i = 0; i < 8; i++) mean += v[i] / 8;
      expect(Math.abs(mean)).toBeLessThan(1e-5);
      y.dispose();
    });
    tf.dispose([tokens, mask]);
    enc.dispose();
  });

  it('is differentiable in every weight and reloads bit-exactly from its state dict', async () => {
    const enc = createCaptionEncoder(config);
    const tokens = tf.tensor2d([[3, 4, 5, 6, 0, 0]], [1, 6], 'int32');
    const mask = tf.tensor2d([[1, 1, 1, 1, 0, 0]], [1, 6], 'float32');
    const target = tf.randomNormal([1, 6, 8], 0, 1, 'float32', 7);
    const vars = enc.weights();
    expect(Object.keys(vars).sort()).toEqual(Object.keys(captionEncoderWeightShapes(config)).sort());
    expect(Object.keys(vars).every((k) => k.startsWith(CAPTION_ENCODER_PREFIX))).toBe(true);
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.square(tf.sub(enc.encode(tokens, mask), target))) as tf.Scalar,
      Object.values(vars),
    );
    // Every weight gets a gradient except embedding rows of unused ids (their gradient is exactly 0).
    const got = Object.values(grads);
    expect(got.length).toBe(Object.keys(vars).length);
    for (const [name, v] of Object.entries(vars)) {
      const g = grads[v.name];
      const norm = (await tf.norm(g).data())[0];
      expect(norm, name).toBeGreaterThan(0);
    }
    const copy = captionEncoderFromTensors(config, vars);
    const [a, b] = [enc.encode(tokens, mask), copy.encode(tokens, mask)];
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    tf.dispose([value, ...got, a, b, tokens, mask, target]);
    enc.dispose();
    copy.dispose();
  });

  it('rejects bad input with one message naming the argument', () => {
    const enc = createCaptionEncoder(config);
    const f = tf.tensor2d([[1, 2]], [1, 2], 'float32');
    const long = tf.zeros([1, 7], 'int32');
    const ok = tf.zeros([1, 2], 'int32');
    const badMask = tf.ones([1, 3]);
    expect(() => enc.encode(f, f)).toThrow(/tokens must be int32/);
    expect(() => enc.encode(long, tf.ones([1, 7]))).toThrow(/L = 7 .* 6 positions/);
    expect(() => enc.encode(ok, badMask)).toThrow(/mask must have shape \[B, L\] = \[1, 2\]/);
    expect(() => createCaptionEncoder({ ...config, heads: 3 })).toThrow(/config.dim \(8\) must be divisible by config.heads \(3\)/);
    expect(() => captionEncoderFromTensors(config, {})).toThrow(/text_encoder.embed.weight' is missing/);
    tf.dispose([f, long, ok, badMask]);
    enc.dispose();
  });
});
