import { execFileSync } from 'node:child_process';
import { describeInfo, relErr, testBackends, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { GOLDEN_DIR, goldenCases } from '../golden-files.js';
import { ssdScan } from './index.js';
import { ssdScanRef } from './reference.js';
import type { SsdScanInputs, SsdScanOptions } from './types.js';

const cases = goldenCases<SsdScanOptions>('ssdScan');

const OUT_TOL = 1e-4;
const GRAD_TOL = 1e-3;

describe('golden vectors', () => {
  it('are the files golden/generate.mjs makes, from a float64 recurrence whose adjoint matches central differences', () => {
    expect(cases.length).toBeGreaterThanOrEqual(3);
    // exits non-zero (and execFileSync throws) when a file differs or the adjoint check fails
    const out = execFileSync(process.execPath, [`${GOLDEN_DIR}generate.mjs`, '--check'], { encoding: 'utf8' });
    expect(out.match(/up to date/g)?.length).toBe(5);
  });
});

describe.each(testBackends())('ssdScan golden vectors on %s', (backend) => {
  for (const gc of cases)
    it(`${gc.name}: outputs and gradients`, async (ctx) => {
      const info = await useBackend(backend, ctx);
      console.log(`ssd golden ${gc.name}: ${describeInfo(info)}`);
      const names = Object.keys(gc.inputs);
      const ts = Object.fromEntries(names.map((k) => [k, tf.tensor(gc.inputs[k].data, gc.inputs[k].shape)])) as unknown as SsdScanInputs;
      const uy = tf.tensor(gc.upstream.y.data, gc.upstream.y.shape);
      const uf = tf.tensor(gc.upstream.finalStates.data, gc.upstream.finalStates.shape);
      const opts = { ...gc.options, returnFinalStates: true } as SsdScanOptions;
      // The tfjs-ops reference is held to the golden files on cpu and wasm; on SwiftShader its dozens of
      // tfjs programs take most of a minute to compile, and ssd.test.ts compares it with the kernel there.
      const impls = [['kernel', ssdScan] as const, ...(backend === 'webgpu' ? [] : [['reference', ssdScanRef] as const])];
      for (const [label, op] of impls) {
        await withNoLeaks(async () => {
          const { y, finalStates } = op(ts, opts);
          const ey = relErr(await y.data(), gc.outputs.y.data);
          const ef = relErr(await finalStates!.data(), gc.outputs.finalStates.data);
          console.log(`  ${label} y ${ey.toExponential(2)} finalStates ${ef.toExponential(2)}`);
          expect(ey, `${label} y`).toBeLessThan(OUT_TOL);
          expect(ef, `${label} finalStates`).toBeLessThan(OUT_TOL);
          tf.dispose([y, finalStates!]);
          const loss = (...args: tf.Tensor[]) => {
            const inp = Object.fromEntries(names.map((k, i) => [k, args[i]])) as unknown as SsdScanInputs;
            const r = op(inp, opts);
            return tf.add(tf.sum(tf.mul(r.y, uy)), tf.sum(tf.mul(r.finalStates!, uf)));
          };
          const grads = tf.grads(loss)(names.map((k) => (ts as unknown as Record<string, tf.Tensor>)[k]));
          for (let i = 0; i < names.length; i++) {
            const e = relErr(await grads[i].data(), gc.grads[names[i]].data);
            console.log(`  ${label} d${names[i]} ${e.toExponential(2)}`);
            expect(e, `${label} gradient of ${names[i]}`).toBeLessThan(GRAD_TOL);
          }
          tf.dispose(grads);
        });
      }
      tf.dispose([...Object.values(ts as unknown as Record<string, tf.Tensor>), uy, uf]);
    });
});
