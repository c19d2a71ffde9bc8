import { InputError, initBackend } from '@t2md/core';
import { freshSeed, relErr, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadWeightsInto } from './checkpoint.js';
import { createDiT } from './dit.js';
import { sincosPosEmbed } from './pos-embed.js';
import { ditPresets, pixartXL2, t2mdXL2, tinyStudent, tinyTeacher } from './presets.js';
import { perturb, randomInputs, values } from './test-helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

describe('DiT on cpu', () => {
  it('a freshly initialised block is the identity (SA and Mamba mixers)', async () => {
    const model = createDiT({ ...tinyStudent, layout: 'SA-HM-WM' });
    const seed = freshSeed();
    const inp = randomInputs(model, 2, 16, 16, seed);
    const D = model.config.hiddenSize;
    const h = tf.randomNormal([2, 64, D], 0, 1, 'float32', seed);
    for (const [i, block] of model.blocks.entries()) {
      const [out, t0] = tf.tidy(() => {
        const temb = model.tEmbedder.apply(inp.t);
        const t0 = tf.reshape(model.tBlock.apply(tf.mul(temb, tf.sigmoid(temb))), [2, 6, D]); // adaLN-single, as forward does
        const yEmb = model.yEmbedder.apply(inp.y);
        return [block.apply(h, t0, yEmb, inp.yMask, [8, 8]).x, t0];
      });
      expect(
        Array.from(await values(t0)).every((v) => v === 0),
        'fresh t_block gives t0 = 0',
      ).toBe(true);
      expect(Array.from(await values(out)), `block ${i} (${block.kind}), seed ${seed}`).toEqual(Array.from(await values(h)));
      tf.dispose([out, t0]);
    }
    tf.dispose(h);
    inp.dispose();
    model.dispose();
  });

  it('a freshly initialised model outputs zeros of the input shape (2C channels with learned sigma)', async () => {
    for (const config of [tinyTeacher, { ...tinyStudent, learnSigma: true }]) {
      const model = createDiT(config);
      const inp = randomInputs(model, 2, 16, 24, freshSeed());
      const out = model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask });
      expect(out.shape).toEqual([2, model.outChannels, 16, 24]);
      expect(model.outChannels).toBe(config.learnSigma ? 6 : 3);
      expect(Array.from(await values(out)).every((v) => v === 0)).toBe(true);
      tf.dispose(out);
      inp.dispose();
      model.dispose();
    }
  });

  it('capture returns every mixer input and output, and each block mixer reproduces its tap alone', async () => {
    const model = createDiT(tinyStudent);
    perturb(model, 7);
    const inp = randomInputs(model, 2, 16, 24, freshSeed()); // non-square grid: 8×12
    const { out, taps } = model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask, capture: true });
    expect(out.shape).toEqual([2, 3, 16, 24]);
    expect(taps.map((tp) => [tp.block, tp.kind])).toEqual(model.layout.map((k, i) => [i, k]));
    for (const tap of taps) {
      expect(tap.input.shape).toEqual([2, 96, 64]);
      expect(tap.output.shape).toEqual([2, 96, 64]);
      const alone = model.blocks[tap.block].mixer.apply(tap.input, [8, 12]);
      expect(relErr(await values(alone), await values(tap.output)), `block ${tap.block}`).toBeLessThan(1e-6);
      alone.dispose();
    }
    // the same forward without capture gives the same output
    const plain = model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask });
    expect(Array.from(await values(plain))).toEqual(Array.from(await values(out)));
    tf.dispose([out, plain, ...taps.flatMap((tp) => [tp.input, tp.output])]);
    inp.dispose();
    model.dispose();
  });

  it('the caption mask matters and a padded token is ignored', async () => {
    const model = createDiT(tinyTeacher);
    perturb(model, 3);
    const inp = randomInputs(model, 2, 16, 16, freshSeed());
    const a = model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask });
    // change only the padded caption tokens of row 1: the output must not move
    const noise = tf.tidy(() => tf.mul(tf.cast(tf.logicalNot(tf.expandDims(inp.yMask, 2)), 'float32'), 5));
    const y2 = tf.add(inp.y, noise);
    const b = model.forward(inp.x, inp.t, y2, { yMask: inp.yMask });
    expect(relErr(await values(b), await values(a))).toBeLessThan(1e-6);
    const c = model.forward(inp.x, inp.t, y2);
    expect(relErr(await values(c), await values(a))).toBeGreaterThan(1e-3);
    tf.dispose([a, b, c, noise, y2]);
    inp.dispose();
    model.dispose();
  });

  it('dropCaption swaps in the null caption', async () => {
    const model = createDiT(tinyTeacher);
    perturb(model, 4);
    const inp = randomInputs(model, 2, 16, 16, freshSeed());
    const drop = tf.tensor1d([true, false], 'bool');
    const dropped = model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask, dropCaption: drop });
    const nul = model.nullCaption(2);
    const ref = model.forward(inp.x, inp.t, nul);
    const kept = model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask });
    const [d, r, k] = [await values(dropped), await values(ref), await values(kept)];
    const half = d.length / 2;
    expect(relErr(d.subarray(0, half), r.subarray(0, half))).toBeLessThan(1e-6);
    expect(relErr(d.subarray(half), k.subarray(half))).toBeLessThan(1e-6);
    tf.dispose([drop, dropped, nul, ref, kept]);
    inp.dispose();
    model.dispose();
  });

  it("forward leaks no tensors (after the grid's positional embedding and the mixers' fused weights are cached)", async () => {
    const model = createDiT(tinyStudent);
    const inp = randomInputs(model, 1, 16, 16, freshSeed());
    tf.dispose(model.forward(inp.x, inp.t, inp.y)); // caches pos_embed for 8×8
    await withNoLeaks(async () => {
      tf.dispose(model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask }));
      const r = model.forward(inp.x, inp.t, inp.y, { capture: true });
      tf.dispose([r.out, ...r.taps.flatMap((tp) => [tp.input, tp.output])]);
    });
    inp.dispose();
    const before = tf.memory().numTensors;
    const names = Object.keys(model.weights());
    const fused = names.filter((k) => k.endsWith('.merge.weight')).length; // each concat mixer keeps its fused output weight
    model.dispose();
    expect(fused).toBe(3);
    expect(before - tf.memory().numTensors).toBe(names.length + 1 + fused); // every weight and the cached embedding and weights
  });

  it('releaseCaches frees the cached embedding and fused weights; the next forward makes them again, same bits', async () => {
    const model = createDiT(tinyStudent);
    perturb(model, freshSeed());
    const inp = randomInputs(model, 1, 16, 16, freshSeed());
    const before = tf.memory().numTensors;
    const first = model.forward(inp.x, inp.t, inp.y);
    const kept = tf.memory().numTensors - before - 1; // the pos embedding and one fused weight per concat mixer
    expect(kept).toBe(1 + 3);
    model.releaseCaches();
    expect(tf.memory().numTensors).toBe(before + 1);
    model.releaseCaches(); // idempotent
    const again = model.forward(inp.x, inp.t, inp.y);
    expect(tf.memory().numTensors).toBe(before + 2 + kept);
    expect(Array.from(new Uint32Array((await again.data()).buffer))).toEqual(Array.from(new Uint32Array((await first.data()).buffer)));
    tf.dispose([first, again]);
    inp.dispose();
    model.dispose();
  });

  it("an 'interpolated' model is its 'sincos' twin at the base grid, and embeds a 2× grid in the base range", async () => {
    const sincos = createDiT(tinyStudent); // baseGrid 8×8: 16 px at patch 2
    perturb(sincos, freshSeed());
    const interp = createDiT({ ...tinyStudent, posEmbed: 'interpolated' });
    loadWeightsInto(interp, sincos.weights() as Record<string, tf.Tensor>);
    const bits = async (t: tf.Tensor) => Array.from(new Uint32Array((await t.data()).buffer));
    const base = randomInputs(sincos, 1, 16, 16, freshSeed());
    const [a, b] = [sincos, interp].map((m) => m.forward(base.x, base.t, base.y));
    expect(await bits(b!)).toEqual(await bits(a!));
    const big = randomInputs(sincos, 1, 32, 32, freshSeed());
    const [c, d] = [sincos, interp].map((m) => m.forward(big.x, big.t, big.y));
    expect(relErr(await values(d!), await values(c!))).toBeGreaterThan(1e-3); // other coordinates, another output
    const pe = await values(interp.posEmbed([16, 16]));
    expect(Array.from(pe)).toEqual(Array.from(sincosPosEmbed([16, 16], interp.config.hiddenSize, 'interpolated', [8, 8])));
    tf.dispose([a!, b!, c!, d!]);
    base.dispose();
    big.dispose();
    sincos.dispose();
    interp.dispose();
  });

  it('gradients reach every token-mixer weight, and only mixer weights are named as such', async () => {
    const model = createDiT(tinyStudent);
    perturb(model, 11);
    const inp = randomInputs(model, 2, 16, 16, freshSeed());
    const mixer = model.mixerWeights();
    const names = Object.keys(mixer);
    expect(names.filter((n) => n.startsWith('blocks.0.'))).toEqual([
      'blocks.0.attn.qkv.weight',
      'blocks.0.attn.qkv.bias',
      'blocks.0.attn.proj.weight',
      'blocks.0.attn.proj.bias',
    ]);
    expect(names.some((n) => n.startsWith('blocks.1.mixer.in_proj.weight'))).toBe(true);
    expect(names.every((n) => model.isMixerWeight(n))).toBe(true);
    expect(model.isMixerWeight('blocks.1.cross_attn.proj.weight')).toBe(false);
    const { grads, value } = tf.variableGrads(
      () => tf.mean(tf.square(model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask }))) as tf.Scalar,
      Object.values(mixer),
    );
    const byVar = new Map(Object.entries(mixer).map(([n, v]) => [v.name, n]));
    expect(
      Object.keys(grads)
        .map((k) => byVar.get(k))
        .sort(),
    ).toEqual([...names].sort());
    for (const [k, g] of Object.entries(grads)) {
      const norm = (await tf.norm(g).data())[0];
      expect(norm, byVar.get(k)).toBeGreaterThan(0);
      expect(Number.isFinite(norm), byVar.get(k)).toBe(true);
    }
    tf.dispose([value, ...Object.values(grads)]);
    inp.dispose();
    model.dispose();
  });

  it('has PixArt state-dict names and shapes', () => {
    const model = createDiT({ ...tinyStudent, learnSigma: true });
    const shapes = Object.fromEntries(Object.entries(model.weights()).map(([n, v]) => [n, v.shape]));
    const D = 64;
    expect(shapes).toMatchObject({
      'x_embedder.proj.weight': [D, 3, 2, 2],
      'x_embedder.proj.bias': [D],
      't_embedder.mlp.0.weight': [D, 256],
      't_embedder.mlp.2.weight': [D, D],
      't_block.1.weight': [6 * D, D],
      't_block.1.bias': [6 * D],
      'y_embedder.y_proj.fc1.weight': [D, 32],
      'y_embedder.y_proj.fc2.weight': [D, D],
      'y_embedder.y_embedding': [8, 32],
      'blocks.0.attn.qkv.weight': [3 * D, D],
      'blocks.0.attn.proj.weight': [D, D],
      'blocks.0.cross_attn.q_linear.weight': [D, D],
      'blocks.0.cross_attn.kv_linear.weight': [2 * D, D],
      'blocks.0.cross_attn.proj.weight': [D, D],
      'blocks.0.mlp.fc1.weight': [4 * D, D],
      'blocks.0.mlp.fc2.weight': [D, 4 * D],
      'blocks.0.scale_shift_table': [6, D],
      'blocks.1.mixer.in_proj.weight': expect.any(Array),
      'blocks.1.mixer.A_log': expect.any(Array),
      'blocks.1.mixer.out_proj.weight': [D, 2 * D],
      'final_layer.linear.weight': [2 * 2 * 6, D],
      'final_layer.scale_shift_table': [2, D],
    });
    expect(shapes['blocks.1.attn.qkv.weight']).toBeUndefined();
    expect(Object.keys(model.trainableWeights())).not.toContain('y_embedder.y_embedding');
    model.dispose();
  });

  it('presets have the paper shapes (checked without building the XL weights)', async () => {
    const { resolveConfig } = await import('./config.js');
    const teacher = resolveConfig(pixartXL2);
    expect(teacher.config).toMatchObject({
      depth: 28,
      hiddenSize: 1152,
      numHeads: 16,
      patchSize: 2,
      inChannels: 4,
      captionChannels: 4096,
      learnSigma: true,
    });
    const student = resolveConfig(t2mdXL2);
    expect(student.layout.filter((k) => k !== 'SA')).toHaveLength(24);
    expect(student.config.mamba).toMatchObject({ dState: 256, expand: 2, headdim: 64 });
    for (const [name, config] of Object.entries(ditPresets)) {
      const { layout } = resolveConfig(config);
      expect(layout[0], name).toBe('SA');
      if (name.endsWith('Student') || name === 't2mdXL2') {
        expect(layout.filter((k) => k !== 'SA').length / layout.length, name).toBeGreaterThanOrEqual(0.75);
        const teacherName = name === 't2mdXL2' ? 'pixartXL2' : name.replace('Student', 'Teacher');
        const teacher = resolveConfig(ditPresets[teacherName]).config;
        const { layout: _l, mamba: _m, ...shared } = resolveConfig(config).config;
        const { layout: _l2, mamba: _m2, ...sharedT } = teacher;
        expect(shared, `${name} differs from ${teacherName} only in its mixers`).toEqual(sharedT);
      }
    }
  });

  it('bad input gets one clear InputError', () => {
    const model = createDiT(tinyTeacher);
    const inp = randomInputs(model, 1, 16, 16, 1);
    const x15 = tf.zeros([1, 3, 15, 16]);
    expect(() => model.forward(x15, inp.t, inp.y)).toThrow(/x is 15×16, which the patch size 2 does not divide/);
    const yWide = tf.zeros([1, 8, 48]);
    expect(() => model.forward(inp.x, inp.t, yWide)).toThrow(/caption features y are 48 wide but the model expects captionChannels = 32/);
    const t2 = tf.zeros([2]);
    expect(() => model.forward(inp.x, t2, inp.y)).toThrow(/t must be a float32 or int32 tensor of shape \[1\]/);
    const x4 = tf.zeros([1, 4, 16, 16]);
    expect(() => model.forward(x4, inp.t, inp.y)).toThrow(/x must have shape \[N, 3, H, W\]/);
    const badMask = tf.ones([1, 5], 'bool');
    expect(() => model.forward(inp.x, inp.t, inp.y, { yMask: badMask })).toThrow(/yMask must be a bool tensor of shape \[1, 8\]/);
    for (const f of [
      () => model.forward(x15, inp.t, inp.y),
      () => createDiT({ ...tinyTeacher, layout: 'SA-(HM' }),
      () => createDiT({ ...tinyTeacher, numHeads: 5 }),
      () => createDiT({ ...tinyTeacher, depth: 3 }),
      () => createDiT({ ...tinyTeacher, posEmbed: 'rope' as 'sincos' }),
      () => createDiT({ ...tinyStudent, mamba: { dState: 16, expand: 2, headdim: 48 } }),
      () => createDiT({ ...tinyTeacher, hiddenSzie: 64 } as unknown as typeof tinyTeacher),
      () => model.blocks[0].mixer.apply(tf.zeros([1, 10, 32])),
    ]) {
      expect(f).toThrow(InputError);
    }
    expect(() => createDiT({ ...tinyTeacher, layout: 'SA-(HM' })).toThrow(/layout 'SA-\(HM' is malformed at position 7/);
    const student = createDiT({ ...tinyStudent, layout: 'SA-HM' });
    const h10 = tf.zeros([1, 10, 64]);
    expect(() => student.blocks[1].mixer.apply(h10)).toThrow(/10 tokens are not a square grid; pass the grid/);
    expect(() => student.blocks[1].mixer.apply(h10, [3, 4])).toThrow(/grid \[3,4\] does not hold 10 tokens/);
    tf.dispose(h10);
    student.dispose();
    tf.dispose([x15, yWide, t2, x4, badMask]);
    inp.dispose();
    model.dispose();
  });
});
