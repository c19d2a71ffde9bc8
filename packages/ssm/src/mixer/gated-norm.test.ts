import { describeInfo, freshSeed, randomArray, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { gatedNormSharedValues, gatedRmsNormFused, gatedRmsNormSharedGate } from './gated-norm.js';
import { gatedRmsNormalize } from './layers.js';

describe.each(testBackends())('gatedRmsNormFused on %s', (name) => {
  it('matches the tfjs-ops gated RMSNorm, forward and gradients, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    console.log(`gatedRmsNormFused: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    const errs: string[] = [];
    for (const [shape, group] of [
      [[3, 5, 8], 8],
      [[2, 7, 12], 4],
      [[1, 3, 600], 600],
      [[2, 2, 2304], 1152],
    ] as [number[], number][]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const y = tf.tensor(randomArray(n, seed + n, -3, 3), shape);
      const z = tf.tensor(randomArray(n, seed + 2 * n, -4, 4), shape);
      const dn = tf.tensor(randomArray(n, seed + 3 * n), shape);
      await withNoLeaks(async () => {
        const out = gatedRmsNormFused(y, z, group, 1e-5);
        const ref = tf.tidy(() => gatedRmsNormalize(y, z, group, 1e-5));
        const e = relErr(await out.data(), await ref.data());
        expect(e, `${shape} seed ${seed}`).toBeLessThan(1e-5);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => gatedRmsNormFused(a, b, group, 1e-5))([y, z], dn);
        const gr = tf.grads((a: tf.Tensor, b: tf.Tensor) => gatedRmsNormalize(a, b, group, 1e-5))([y, z], dn);
        const ey = relErr(await g[0].data(), await gr[0].data());
        const ez = relErr(await g[1].data(), await gr[1].data());
        expect(ey, `dy ${shape} seed ${seed}`).toBeLessThan(1e-4);
        expect(ez, `dz ${shape} seed ${seed}`).toBeLessThan(1e-4);
        errs.push(`${shape}/${group}: ${e.toExponential(1)} ${ey.toExponential(1)} ${ez.toExponential(1)}`);
        tf.dispose([out, ref, ...g, ...gr]);
      });
      tf.dispose([y, z, dn]);
    }
    console.log(`gatedRmsNormFused vs tfjs ops on ${name} (out, dy, dz): ${errs.join('; ')}`);
  });

  it('gives each workgroup several units when the dispatch is capped (as above 65535 units)', async (ctx) => {
    await useBackend(name, ctx);
    const seed = freshSeed();
    const shape = [3, 37, 20]; // 111 units of 20 (group 20), then 222 units of 10
    const n = 3 * 37 * 20;
    const y = tf.tensor(randomArray(n, seed, -3, 3), shape);
    const z = tf.tensor(randomArray(n, seed + 1, -3, 3), shape);
    const dn = tf.tensor(randomArray(n, seed + 2), shape);
    await withNoLeaks(async () => {
      for (const [group, maxWorkgroups] of [
        [20, 7],
        [10, 64],
        [10, 1],
      ]) {
        const out = gatedRmsNormFused(y, z, group, 1e-5, { maxWorkgroups });
        const ref = tf.tidy(() => gatedRmsNormalize(y, z, group, 1e-5));
        expect(relErr(await out.data(), await ref.data()), `group ${group} cap ${maxWorkgroups} seed ${seed}`).toBeLessThan(1e-5);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => gatedRmsNormFused(a, b, group, 1e-5, { maxWorkgroups }))([y, z], dn);
        const gr = tf.grads((a: tf.Tensor, b: tf.Tensor) => gatedRmsNormalize(a, b, group, 1e-5))([y, z], dn);
        for (let i = 0; i < 2; i++) expect(relErr(await g[i].data(), await gr[i].data()), `grad ${i} seed ${seed}`).toBeLessThan(1e-4);
        tf.dispose([out, ref, ...g, ...gr]);
      }
    });
    tf.dispose([y, z, dn]);
  });

  it('rejects mismatched shapes and a group size that does not divide the channels', async (ctx) => {
    await useBackend(name, ctx);
    const [a, b] = [tf.zeros([2, 6]), tf.zeros([2, 5])];
    expect(() => gatedRmsNormFused(a, b, 2, 1e-5)).toThrow(/z must have the shape of y \[2, 6\], got \[2, 5\]/);
    expect(() => gatedRmsNormFused(a, a, 4, 1e-5)).toThrow(/groupSize must divide the last axis of y \(6\), got 4/);
    tf.dispose([a, b]);
  });
});

describe.each(['cpu', 'wasm', 'webgpu'] as const)('gatedRmsNormSharedGate on %s', (name) => {
  it('equals gatedRmsNormFused with the gate repeated, bit for bit, and its loop reference, without leaking', async (ctx) => {
    const info = await useBackend(name, ctx);
    const seed = freshSeed();
    const errs: string[] = [];
    for (const [[B, L, C], k, group] of [
      [[2, 5, 8], 2, 8],
      [[1, 7, 12], 2, 4],
      [[3, 2, 6], 3, 3],
    ] as [number[], number, number][]) {
      const y = tf.tensor(randomArray(B! * L! * k * C!, seed + C!, -3, 3), [B!, L!, k * C!]);
      const z = tf.tensor(randomArray(B! * L! * C!, seed + 2 * C!, -6, 6), [B!, L!, C!]);
      const label = `[${B}, ${L}, ${k}·${C}] group ${group} seed ${seed}`;
      await withNoLeaks(async () => {
        const got = gatedRmsNormSharedGate(y, z, group, 1e-5);
        const repeated = tf.tidy(() => gatedRmsNormFused(y, tf.concat(Array(k).fill(z), 2), group, 1e-5));
        const gv = await got.data();
        expect(Array.from(gv), label).toEqual(Array.from(await repeated.data()));
        // several units per workgroup (webgpu: as above 65535 units; a no-op elsewhere)
        const capped = gatedRmsNormSharedGate(y, z, group, 1e-5, { maxWorkgroups: 3 });
        expect(Array.from(await capped.data()), `${label} capped`).toEqual(Array.from(gv));
        capped.dispose();
        const ref = gatedNormSharedValues(
          (await y.data()) as Float32Array,
          (await z.data()) as Float32Array,
          [B! * L!, k, C! / group, group],
          1e-5,
        );
        const e = relErr(gv, ref);
        expect(e, label).toBeLessThan(1e-6);
        errs.push(`${label}: ${e.toExponential(1)}`);
        tf.dispose([got, repeated]);
      });
      tf.dispose([y, z]);
    }
    console.log(`gatedRmsNormSharedGate vs its loop on ${describeInfo(info)}: ${errs.join('; ')}`);
  });

  it('rejects a y that is not k blocks of z and a group size that does not divide z', async (ctx) => {
    await useBackend(name, ctx);
    const [y, z, z3] = [tf.zeros([1, 2, 6]), tf.zeros([1, 2, 4]), tf.zeros([1, 2, 3])];
    expect(() => gatedRmsNormSharedGate(y, z, 2, 1e-5)).toThrow(
      /y must be \[B, L, k·C\] for z \[B, L, C\], got y \[1, 2, 6\] and z \[1, 2, 4\]/,
    );
    expect(() => gatedRmsNormSharedGate(y, z3, 2, 1e-5)).toThrow(/groupSize must divide z's channels \(3\), got 2/);
    tf.dispose([y, z, z3]);
  });
});
