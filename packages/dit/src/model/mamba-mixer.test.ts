/**
 * The unidirectional Mamba mixer (`mamba.bidirectional: false`, the paper's scan ablation): one
 * direction, mamba_ssm names only, a plain-transpose reference, causality in scan order, gradients,
 * and a checkpoint that loads back as the same model.
 */
import { InputError, initBackend, Rng } from '@t2md/core';
import { freshSeed, relErr, withNoLeaks } from '@t2md/core/testing';
import { BidirectionalMamba, Mamba2Mixer } from '@t2md/ssm';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDiT, saveDiT } from './checkpoint.js';
import { MAMBA_DEFAULTS } from './config.js';
import { createDiT } from './dit.js';
import { MambaMixer } from './mamba-mixer.js';
import { tinyStudent } from './presets.js';
import { perturb, randomInputs, values } from './test-helpers.js';

beforeAll(async () => {
  await initBackend({ backend: 'cpu' });
});

const uni = { ...tinyStudent, mamba: { ...tinyStudent.mamba!, bidirectional: false } };
/** The resolved Mamba settings of `uni` (d_state 16, headdim 16, chunk 16). */
const settings = { ...MAMBA_DEFAULTS, ...tinyStudent.mamba!, bidirectional: false };

/** The mixers of a model, in block order. */
const mambaMixers = (m: ReturnType<typeof createDiT>) => m.blocks.filter((b) => b.kind !== 'SA').map((b) => b.mixer as MambaMixer);

describe('unidirectional Mamba mixer (cpu)', () => {
  it('builds one Mamba2 per block with mamba_ssm names and no merge layer; the default stays bidirectional', () => {
    const m = createDiT(uni);
    expect(m.config.mamba.bidirectional).toBe(false);
    const mixers = mambaMixers(m);
    expect(mixers.length).toBeGreaterThan(0);
    for (const x of mixers) {
      expect(x.bidirectional).toBe(false);
      expect(x.inner).toBeInstanceOf(Mamba2Mixer);
    }
    const names = Object.keys(m.weights()).filter((n) => n.includes('.mixer.'));
    expect(names.some((n) => n.includes('merge'))).toBe(false);
    expect(names).toContain('blocks.1.mixer.in_proj.weight');
    m.dispose();
    const bi = createDiT(tinyStudent);
    expect(bi.config.mamba.bidirectional).toBe(true);
    for (const x of mambaMixers(bi)) expect(x.inner).toBeInstanceOf(BidirectionalMamba);
    expect(Object.keys(bi.weights())).toContain('blocks.1.mixer.merge.weight');
    bi.dispose();
  });

  it('rejects a non-boolean bidirectional with one InputError naming the field', () => {
    expect(() => createDiT({ ...tinyStudent, mamba: { ...tinyStudent.mamba!, bidirectional: 'no' as never } })).toThrow(InputError);
    expect(() => createDiT({ ...tinyStudent, mamba: { ...tinyStudent.mamba!, bidirectional: 1 as never } })).toThrow(
      /config\.mamba\.bidirectional must be true or false/,
    );
  });

  it('HM equals the inner Mamba2 over the transposed grid; output t depends only on tokens up to t in scan order', async () => {
    for (const kind of ['HM', 'WM'] as const) {
      for (const [H, W] of [
        [3, 5],
        [4, 4],
      ] as const) {
        const seed = freshSeed();
        const mixer = new MambaMixer(kind, 32, settings, new Rng(seed));
        const h = tf.randomNormal([2, H * W, 32], 0, 1, 'float32', seed);
        await withNoLeaks(async () => {
          const out = mixer.apply(h, [H, W]);
          // Reference: put the grid in scan order by a transpose (HM = column-major), scan, transpose back.
          const ref = tf.tidy(() => {
            if (kind === 'WM') return (mixer.inner as Mamba2Mixer).apply(h);
            const t = tf.reshape(tf.transpose(tf.reshape(h, [2, H, W, 32]), [0, 2, 1, 3]), [2, H * W, 32]);
            const y = (mixer.inner as Mamba2Mixer).apply(t);
            return tf.reshape(tf.transpose(tf.reshape(y, [2, W, H, 32]), [0, 2, 1, 3]), [2, H * W, 32]);
          });
          expect(relErr(await values(out), await values(ref)), `${kind} ${H}x${W} seed ${seed}`).toBeLessThan(1e-5);
          // Changing the last token of the scan changes only that token's output (one direction).
          const last = H * W - 1; // grid token (H-1, W-1) is scanned last in both orders
          const bumped = tf.tidy(() => tf.add(h, tf.mul(tf.expandDims(tf.oneHot(tf.fill([2], last, 'int32'), H * W), 2), 3)));
          const out2 = mixer.apply(bumped, [H, W]);
          const a = await values(out);
          const b = await values(out2);
          for (let n = 0; n < 2; n++)
            for (let t = 0; t < H * W; t++) {
              const base = (n * H * W + t) * 32;
              const changed = Array.from(a.subarray(base, base + 32)).some((v, i) => v !== b[base + i]);
              expect(changed, `${kind} token ${t}`).toBe(t === last);
            }
          tf.dispose([out, ref, bumped, out2]);
        });
        tf.dispose(h);
        mixer.dispose();
      }
    }
  });

  it('is differentiable in its input and every weight: each gradient is nonzero and matches central differences', async () => {
    const seed = freshSeed();
    const m = createDiT(uni);
    perturb(m, seed, 0.2); // no zero-initialised weight left to block a path
    const mixer = mambaMixers(m)[0];
    const h = tf.randomNormal([1, 12, m.config.hiddenSize], 0, 1, 'float32', seed);
    const loss = () => tf.sum(tf.square(mixer.apply(h, [3, 4]))) as tf.Scalar;
    const w = mixer.weights() as Record<string, tf.Variable>;
    const names = Object.keys(w);
    expect(names.length).toBeGreaterThanOrEqual(8); // in_proj, conv1d (weight, bias), dt_bias, A_log, D, norm, out_proj
    await withNoLeaks(async () => {
      const { value, grads } = tf.variableGrads(loss, Object.values(w));
      const dx = tf.grad((x: tf.Tensor) => tf.sum(tf.square(mixer.apply(x, [3, 4]))))(h);
      const loss0 = (await value.data())[0];
      expect(Number.isFinite(loss0)).toBe(true);
      expect(Array.from(await dx.data()).some((v) => v !== 0)).toBe(true);
      // Along a random direction v of each weight: <grad, v> against (L(w + εv) − L(w − εv)) / 2ε.
      const rng = new Rng(seed + 1);
      for (const name of names) {
        const g = grads[w[name].name];
        expect(g, name).toBeDefined();
        const gv = await g.data();
        expect(
          gv.some((v) => v !== 0),
          `${name} has a zero gradient (seed ${seed})`,
        ).toBe(true);
        const v = rng.randn(w[name].shape);
        const orig = w[name].clone();
        const eps = 3e-3;
        const at = async (step: number) => {
          tf.tidy(() => w[name].assign(tf.add(orig, tf.mul(v, step * eps))));
          const l = tf.tidy(loss);
          const out = (await l.data())[0];
          l.dispose();
          return out;
        };
        // Richardson's extrapolation of two central differences cancels their ε² term: along in_proj
        // the loss is curved enough (dt's softplus and exp) that ε² alone was 20% on some seeds.
        const central = async (scale: number) => ((await at(scale)) - (await at(-scale))) / (2 * scale * eps);
        const fd = (4 * (await central(0.5)) - (await central(1))) / 3;
        w[name].assign(orig);
        const vv = await v.data();
        let an = 0;
        for (let i = 0; i < gv.length; i++) an += gv[i] * vv[i];
        // float32 rounding of the loss (~1e-7 of it per op, summed), which the extrapolation weighs
        // 3/ε, plus what is left of the truncation (O(ε⁴))
        const tol = 3e-2 * Math.abs(fd) + (3e-6 * loss0) / eps;
        console.log(
          `mixer d${name}: <g, v> ${an.toPrecision(6)}, central difference ${fd.toPrecision(6)} (tolerance ${tol.toPrecision(2)})`,
        );
        expect(Math.abs(an - fd), `${name} (seed ${seed})`).toBeLessThan(tol);
        tf.dispose([v, orig]);
      }
      tf.dispose([value, dx, ...Object.values(grads)]);
    });
    tf.dispose(h);
    m.dispose();
  });

  it('a unidirectional checkpoint round-trips: config, weight names and outputs', async () => {
    const seed = freshSeed();
    const model = createDiT(uni);
    perturb(model, seed);
    const back = loadDiT(await saveDiT(model));
    expect(back.config).toEqual(model.config);
    expect(back.config.mamba.bidirectional).toBe(false);
    for (const x of mambaMixers(back)) expect(x.bidirectional).toBe(false);
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
});
