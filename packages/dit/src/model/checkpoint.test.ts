import { InputError, initBackend, saveSafetensors } from '@t2md/core';
import { freshSeed } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_METADATA_KEY, loadDiT, loadWeightsInto, saveDiT } from './checkpoint.js';
import { createDiT } from './dit.js';
import { tinyStudent, tinyTeacher } from './presets.js';
import { perturb, randomInputs, values } from './test-helpers.js';
import { transferFromTeacher } from './transfer.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

/** Expects `f` to throw an InputError whose message matches every pattern. */
function expectInputError(f: () => unknown, ...patterns: RegExp[]): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InputError);
  for (const p of patterns) expect((err as Error).message).toMatch(p);
}

describe('checkpoints', () => {
  it('save → load reproduces the config and the outputs exactly', async () => {
    const seed = freshSeed();
    const model = createDiT({ ...tinyStudent, layout: 'SA-HM-WM', learnSigma: true, posEmbed: 'centered' });
    perturb(model, seed); // away from the zero init, so the comparison means something
    const bytes = await saveDiT(model, { note: 'test' });
    const back = loadDiT(bytes);
    expect(back.config).toEqual(model.config);
    expect(Object.keys(back.weights()).sort()).toEqual(Object.keys(model.weights()).sort());
    const inp = randomInputs(model, 2, 16, 24, seed);
    const a = model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask });
    const b = back.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask });
    const av = await values(a);
    expect(av.some((v) => v !== 0)).toBe(true);
    expect(Array.from(await values(b))).toEqual(Array.from(av));
    tf.dispose([a, b]);
    inp.dispose();
    back.dispose();
    model.dispose();
  });

  it('transfer leaves every shared weight equal and the Mamba mixers untouched', async () => {
    const teacher = createDiT({ ...tinyTeacher, seed: 1 });
    perturb(teacher, freshSeed());
    const student = createDiT({ ...tinyStudent, seed: 2 });
    const mixersBefore = Object.fromEntries(
      await Promise.all(
        Object.entries(student.weights())
          .filter(([n]) => n.includes('.mixer.'))
          .map(async ([n, v]) => [n, Array.from(await values(v))]),
      ),
    );
    expect(Object.keys(mixersBefore).length).toBeGreaterThan(0);
    const copied = transferFromTeacher(student, teacher);
    const tw = teacher.weights();
    const sw = student.weights();
    const shared = Object.keys(sw)
      .filter((n) => tw[n] != null)
      .sort();
    expect(copied).toEqual(shared);
    expect(copied).toContain('blocks.0.attn.qkv.weight');
    expect(copied).toContain('blocks.3.cross_attn.kv_linear.weight');
    expect(copied).not.toContain('blocks.1.attn.qkv.weight'); // block 1 is HM in the student
    for (const n of shared) expect(Array.from(await values(sw[n])), n).toEqual(Array.from(await values(tw[n])));
    for (const [n, before] of Object.entries(mixersBefore)) expect(Array.from(await values(sw[n])), n).toEqual(before);
    // the student's variables are its own: training the teacher afterwards does not move them
    const before = Array.from(await values(sw['blocks.0.mlp.fc1.weight']));
    const bumped = tf.add(tw['blocks.0.mlp.fc1.weight'], 1);
    tw['blocks.0.mlp.fc1.weight'].assign(bumped);
    bumped.dispose();
    expect(Array.from(await values(sw['blocks.0.mlp.fc1.weight']))).toEqual(before);
    teacher.dispose();
    expect(Array.from(await values(sw['blocks.0.mlp.fc1.weight']))).toEqual(before);
    student.dispose();
  });

  it('a checkpoint with missing, extra or mis-shaped tensors gets one clear InputError naming them', async () => {
    const model = createDiT(tinyTeacher);
    const w = model.weights();
    const { 'blocks.2.mlp.fc1.weight': _dropped, ...missing } = w;
    expectInputError(() => loadWeightsInto(model, missing), /1 missing \(blocks\.2\.mlp\.fc1\.weight\)/);
    const junk = tf.zeros([3]);
    expectInputError(
      () => loadWeightsInto(model, { ...w, 'blocks.9.attn.qkv.weight': junk }),
      /1 unexpected \(blocks\.9\.attn\.qkv\.weight\)/,
    );
    const wrong = tf.zeros([64, 65]);
    expectInputError(
      () => loadWeightsInto(model, { ...w, 'blocks.0.attn.proj.weight': wrong }),
      /1 mis-shaped \(blocks\.0\.attn\.proj\.weight is \[64, 65\] but the model needs \[64, 64\]\)/,
    );
    // PixArt's computed pos_embed buffer is accepted and ignored; a prefix selects a model inside a bigger file
    const pos = tf.zeros([1, 64, 64]);
    expect(loadWeightsInto(model, { ...w, pos_embed: pos })).toHaveLength(Object.keys(w).length);
    const prefixed = Object.fromEntries(Object.entries(w).map(([n, v]) => [`ema.${n}`, v as tf.Tensor]));
    expect(loadWeightsInto(model, { ...prefixed, 'optimizer.step': junk }, { prefix: 'ema.' })).toHaveLength(Object.keys(w).length);
    // a student's file into a teacher: the mixers differ
    const student = createDiT(tinyStudent);
    const sBytes = await saveDiT(student);
    expectInputError(
      () => loadWeightsInto(model, student.weights()),
      /missing \(blocks\.1\.attn\.qkv\.weight/,
      /unexpected \(blocks\.1\.mixer\./,
    );
    expect(loadDiT(sBytes).layout).toEqual(['SA', 'HM', 'WM', 'HM']);
    tf.dispose([junk, wrong, pos]);
    student.dispose();
    model.dispose();
  });

  it('a file that is not a model gets one clear InputError', async () => {
    expectInputError(() => loadDiT(new Uint8Array([1, 2, 3])), /model file could not be read/);
    const t = tf.zeros([2]);
    const noConfig = await saveSafetensors({ a: t });
    expectInputError(() => loadDiT(noConfig), new RegExp(`no '${CONFIG_METADATA_KEY}' metadata`));
    const badJson = await saveSafetensors({ a: t }, { [CONFIG_METADATA_KEY]: '{"layout": ' });
    expectInputError(() => loadDiT(badJson), /not valid JSON/);
    const badConfig = await saveSafetensors({ a: t }, { [CONFIG_METADATA_KEY]: JSON.stringify({ ...tinyTeacher, layout: 'SA-XX' }) });
    expectInputError(() => loadDiT(badConfig), /layout 'SA-XX' is malformed at position 4/);
    const before = tf.memory().numTensors;
    const model = createDiT(tinyTeacher);
    const bytes = await saveDiT(model);
    model.dispose();
    const tensorsOnly = await saveSafetensors({ a: t }, { [CONFIG_METADATA_KEY]: JSON.stringify(tinyTeacher) });
    expectInputError(() => loadDiT(tensorsOnly), /unexpected \(a\)/);
    // a failed load frees what it allocated
    expect(tf.memory().numTensors).toBe(before);
    expect(bytes.length).toBeGreaterThan(0);
    t.dispose();
  });
});
