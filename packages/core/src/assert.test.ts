import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertFloat, assertInt, assertOneOf, assertRank, assertShape } from './assert.js';
import { InputError } from './errors.js';
import { tryBackend } from './testing/index.js';

describe('argument checks', () => {
  let x: tf.Tensor;
  beforeAll(async () => {
    await tryBackend('cpu');
    x = tf.zeros([2, 3, 4]);
  });
  it('name the argument and both shapes', () => {
    expect(() => assertShape('x', x, [2, null, 5], 'B L D')).toThrow(
      new InputError('x must have shape [2, L, 5] ([B, L, D]), got [2, 3, 4].'),
    );
    expect(() => assertRank('x', x, 4, 'B L H P')).toThrow(/x must have rank 4 \[B, L, H, P\], got shape \[2, 3, 4\]/);
    expect(() => assertShape('x', x, [2, null, 4])).not.toThrow();
  });
  it('check dtypes, integers and choices', () => {
    const i = tf.zeros([1], 'int32');
    expect(() => assertFloat('dt', i)).toThrow(/dt must be float32, got int32/);
    expect(() => assertInt('steps', -1, 1)).toThrow(/steps must be an integer in \[1, /);
    expect(() => assertOneOf('sampler', 'ddim2', ['ddim', 'ddpm'])).toThrow(/sampler must be one of 'ddim', 'ddpm', got "ddim2"/);
    i.dispose();
  });
});
