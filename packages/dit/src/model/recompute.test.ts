import { type BackendName, initBackend } from '@t2md/core';
import { describeInfo, freshSeed, relErr, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createDiT, type DiT } from './dit.js';
import { tinyStudent } from './presets.js';
import { perturb, randomInputs } from './test-helpers.js';

// Activation recomputation must not change a training step: the same loss and the same gradient of
// every trained weight as the plain tape, up to float rounding (the summation order of a gradient that
// several blocks add into, t0's and y's, may differ), with nothing left behind.

/** A distill-like loss: L_mse-like on the output plus an L_mixer-like term on every captured mixer output. */
function lossOf(
  model: DiT,
  inp: ReturnType<typeof randomInputs>,
  drop: tf.Tensor,
  recompute: boolean | ReadonlySet<tf.Variable>,
  held: { bytes: number },
) {
  return () => {
    const before = tf.memory().numBytes;
    const { out, taps } = model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask, dropCaption: drop, capture: true, recompute });
    held.bytes = tf.memory().numBytes - before; // what the forward leaves for the backward (and its results)
    const mixer = tf.addN(taps.map((tp) => tf.mean(tf.square(tp.output))));
    return tf.add(tf.mean(tf.square(out)), tf.mul(mixer, 0.2)) as tf.Scalar;
  };
}

async function gradsOf(
  model: DiT,
  inp: ReturnType<typeof randomInputs>,
  drop: tf.Tensor,
  vars: tf.Variable[],
  recompute: boolean | ReadonlySet<tf.Variable>,
): Promise<{ loss: number; grads: Map<string, Float32Array>; heldBytes: number }> {
  const held = { bytes: 0 };
  return withNoLeaks(async () => {
    const { value, grads } = tf.variableGrads(lossOf(model, inp, drop, recompute, held), vars);
    const out = new Map<string, Float32Array>();
    for (const [name, g] of Object.entries(grads)) out.set(name, (await g.data()) as Float32Array);
    const loss = (await value.data())[0]!;
    tf.dispose([value, ...Object.values(grads)]);
    return { loss, grads: out, heldBytes: held.bytes };
  });
}

async function checkSame(backend: BackendName, tol: number, cases: readonly ('all' | 'mixers')[]) {
  const seed = freshSeed();
  const model = createDiT(tinyStudent); // SA, HM, WM, HM
  perturb(model, seed);
  const inp = randomInputs(model, 2, 8, 16, seed);
  const drop = tf.tensor1d([false, true], 'bool');
  tf.dispose(model.forward(inp.x, inp.t, inp.y)); // caches the grid's positional embedding (kept)
  try {
    const all = Object.values(model.trainableWeights());
    const mixers = Object.entries(model.trainableWeights())
      .filter(([n]) => model.isMixerWeight(n))
      .map(([, v]) => v);
    const runs = [
      ['all', 'every weight', all, true],
      ['mixers', 'the mixers (distill)', mixers, new Set(mixers)],
    ] as const;
    for (const [, what, vars, recompute] of runs.filter(([k]) => cases.includes(k))) {
      const plain = await gradsOf(model, inp, drop, [...vars], false);
      const again = await gradsOf(model, inp, drop, [...vars], recompute);
      expect(again.loss, `${backend} ${what}: the loss`).toBe(plain.loss);
      expect([...again.grads.keys()].sort()).toEqual([...plain.grads.keys()].sort());
      expect(plain.grads.size).toBe(vars.length);
      let worst = 0;
      for (const [name, g] of plain.grads) {
        const e = relErr(again.grads.get(name)!, g);
        worst = Math.max(worst, e);
        expect(e, `${backend} ${what}: ${name}, seed ${seed}`).toBeLessThan(tol);
      }
      console.log(
        `recompute on ${backend}, ${what}: ${plain.grads.size} gradients, worst relative error ${worst.toExponential(2)}; ` +
          `the forward kept ${again.heldBytes} bytes for the backward, against ${plain.heldBytes} without`,
      );
      expect(again.heldBytes, 'recompute keeps less for the backward').toBeLessThan(plain.heldBytes / 2);
    }
  } finally {
    tf.dispose(drop);
    inp.dispose();
    model.dispose();
  }
}

describe('DiT forward with recompute', () => {
  it('gives the plain tape’s loss and gradients on cpu, without leaks', async () => {
    await initBackend({ backend: 'cpu' });
    await checkSame('cpu', 1e-5, ['all', 'mixers']);
  });

  it('gives the plain tape’s loss and gradients on webgpu, without leaks', async (ctx) => {
    const info = await useBackend('webgpu', ctx);
    console.log(`recompute: running on ${describeInfo(info)}`);
    await checkSame('webgpu', 1e-4, ['mixers']); // one case: SwiftShader takes a minute for it
  }, 300_000);

  it('changes nothing off a tape (the frozen teacher’s pass)', async () => {
    await initBackend({ backend: 'cpu' });
    const model = createDiT(tinyStudent);
    perturb(model, 3);
    const inp = randomInputs(model, 2, 8, 8, 3);
    tf.dispose(model.forward(inp.x, inp.t, inp.y));
    const a = model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask });
    const b = await withNoLeaks(() => model.forward(inp.x, inp.t, inp.y, { yMask: inp.yMask, recompute: true }));
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    tf.dispose([a, b]);
    inp.dispose();
    model.dispose();
  });
});
