import { InputError, initBackend } from '@t2md/core';
import { freshSeed } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDiT } from './checkpoint.js';
import { createDiT, mixerWeightKind } from './dit.js';
import {
  decodeCheckpoint,
  disposeCheckpoint,
  encodeCheckpoint,
  encodeTrainedModel,
  loadTrainedModel,
  MODEL_PREFIX,
  PREDICTION_KEY,
  type TextEncoderLike,
  type TextEncoderSpec,
} from './model-file.js';
import { tinyStudent } from './presets.js';
import { perturb, values } from './test-helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

const spec: TextEncoderSpec = { vocabSize: 8, maxLength: 6, dim: 4, layers: 1, heads: 1, mlpRatio: 2, seed: 1 };

/** A stand-in caption encoder holding one weight `text_encoder.w` [2, 4]. */
function fakeEncoder(_spec: TextEncoderSpec, tensors?: Record<string, tf.Tensor>): TextEncoderLike {
  const given = tensors?.['text_encoder.w'];
  const w = tf.tidy(() => tf.variable(given ? tf.clone(given) : tf.ones([2, 4])));
  return { config: _spec, weights: () => ({ 'text_encoder.w': w }), encode: () => tf.zeros([1, 6, 4]), dispose: () => w.dispose() };
}

describe('model files', () => {
  it('encodeTrainedModel → loadTrainedModel gives the same DiT and encoder, EMA weights folded in', async () => {
    const seed = freshSeed();
    const model = createDiT(tinyStudent);
    perturb(model, seed);
    const enc = fakeEncoder(spec);
    const name = `${MODEL_PREFIX}final_layer.linear.bias`;
    const ema = { [name]: tf.fill(model.weights()['final_layer.linear.bias'].shape, 0.5) };
    const bytes = await encodeTrainedModel(model, enc, spec, ema, { 't2md.note': 'x' });
    const before = tf.memory().numTensors;
    const back = loadTrainedModel(bytes, fakeEncoder);
    expect(back.model.config).toEqual(model.config);
    expect(back.spec).toEqual(spec);
    expect(back.metadata['t2md.note']).toBe('x');
    expect(Array.from(await values(back.model.weights()['final_layer.linear.bias'])).every((v) => v === 0.5)).toBe(true);
    const w = 'blocks.1.mixer.in_proj.weight';
    expect(Array.from(await values(back.model.weights()[w]))).toEqual(Array.from(await values(model.weights()[w])));
    expect(Array.from(await values(back.encoder.weights()['text_encoder.w']))).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    // the DiT part alone, as loadDiT reads it
    const dit = loadDiT(bytes, { prefix: MODEL_PREFIX });
    expect(dit.config).toEqual(model.config);
    back.dispose();
    dit.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(ema));
    enc.dispose();
    model.dispose();
  });

  it('a checkpoint splits into its groups, and its EMA weights win unless ema: false', async () => {
    const model = createDiT(tinyStudent);
    const enc = fakeEncoder(spec);
    const weights = {
      ...Object.fromEntries(Object.entries(model.weights()).map(([n, v]) => [`${MODEL_PREFIX}${n}`, v])),
      ...enc.weights(),
    };
    const emaW = tf.fill([2, 4], 3);
    const mW = tf.zeros([2, 4]);
    const meta = { 't2md.config': JSON.stringify(model.config), 't2md.text_encoder': JSON.stringify(spec) };
    const bytes = await encodeCheckpoint({ weights, m: { 'text_encoder.w': mW }, ema: { 'text_encoder.w': emaW } }, meta);
    const ckpt = decodeCheckpoint(bytes);
    expect(Object.keys(ckpt.m)).toEqual(['text_encoder.w']);
    expect(Object.keys(ckpt.ema)).toEqual(['text_encoder.w']);
    disposeCheckpoint(ckpt);
    const withEma = loadTrainedModel(bytes, fakeEncoder);
    const live = loadTrainedModel(bytes, fakeEncoder, { ema: false });
    expect((await values(withEma.encoder.weights()['text_encoder.w']))[0]).toBe(3);
    expect((await values(live.encoder.weights()['text_encoder.w']))[0]).toBe(1);
    for (const x of [withEma, live, enc, model]) x.dispose();
    tf.dispose([emaW, mW]);
  });

  it('refuses a file without its metadata, or not safetensors at all, with one InputError naming it', async () => {
    const model = createDiT(tinyStudent);
    const enc = fakeEncoder(spec);
    const bytes = await encodeCheckpoint({ weights: enc.weights() }, { 't2md.config': JSON.stringify(model.config) });
    expect(() => loadTrainedModel(bytes, fakeEncoder, { where: 'x.safetensors' })).toThrow(InputError);
    expect(() => loadTrainedModel(bytes, fakeEncoder, { where: 'x.safetensors' })).toThrow(
      /x\.safetensors's 't2md\.text_encoder' metadata is missing/,
    );
    expect(() => loadTrainedModel(new Uint8Array([1, 2, 3]), fakeEncoder)).toThrow(/the model file is not a model or checkpoint file/);
    enc.dispose();
    model.dispose();
  });

  it("records the prediction type: 'v' reads back 'v', no field reads 'epsilon', a bad value is one InputError", async () => {
    const model = createDiT(tinyStudent);
    const enc = fakeEncoder(spec);
    const before = tf.memory().numTensors;
    const read = async (meta: Record<string, string>) => {
      const m = loadTrainedModel(await encodeTrainedModel(model, enc, spec, {}, meta), fakeEncoder, { where: 'x.safetensors' });
      m.dispose();
      return m.prediction;
    };
    expect(await read({ [PREDICTION_KEY]: 'v' })).toBe('v');
    expect(await read({})).toBe('epsilon');
    const bad = await encodeTrainedModel(model, enc, spec, {}, { [PREDICTION_KEY]: 'velocity' });
    expect(() => loadTrainedModel(bad, fakeEncoder, { where: 'x.safetensors' })).toThrow(
      new InputError(
        `x.safetensors's 't2md.prediction' metadata is "velocity", not one of epsilon, v, sample; the file is damaged or from a newer t2md, write it again.`,
      ),
    );
    expect(tf.memory().numTensors).toBe(before);
    enc.dispose();
    model.dispose();
  });

  it('names token-mixer weights in one place', () => {
    expect(mixerWeightKind('blocks.0.attn.qkv.weight')).toBe('attention');
    expect(mixerWeightKind('blocks.12.mixer.in_proj.weight')).toBe('mamba');
    expect(mixerWeightKind('blocks.1.cross_attn.q_linear.weight')).toBeNull();
    expect(mixerWeightKind('final_layer.linear.weight')).toBeNull();
    const m = createDiT(tinyStudent);
    expect(m.isMixerWeight('blocks.1.mixer.D', 'mamba')).toBe(true);
    expect(m.isMixerWeight('blocks.1.mixer.D', 'attention')).toBe(false);
    expect(Object.keys(m.mixerWeights()).every((n) => mixerWeightKind(n) != null)).toBe(true);
    m.dispose();
  });
});
