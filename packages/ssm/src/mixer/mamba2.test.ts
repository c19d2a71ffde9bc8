import { InputError, Rng } from '@t2md/core';
import { describeInfo, freshSeed, randomArray, relErr, useBackend, withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { setSsdBindingLimitForTests } from '../ssd/limit.js';
import { type Mamba2Config, mamba2WeightShapes, resolveMamba2Config } from './config.js';
import { Mamba2Mixer, mamba2Forward } from './mamba2.js';
import { mamba2Reference } from './reference.js';

const NAMES = ['in_proj.weight', 'conv1d.weight', 'conv1d.bias', 'dt_bias', 'A_log', 'D', 'norm.weight', 'out_proj.weight'];

/**
 * Moves D, norm.weight and conv1d.bias off their constant inits so the comparison exercises them.
 * With a dtLimit, dt_bias is also centred in the limit: the init puts dt in [1e-3, 0.1], so with a
 * lower limit of 0.01 a small config can clamp every dt, and the clamp's zero gradient would leave
 * dt_bias with nothing to compare.
 */
function perturb(m: Mamba2Mixer, seed: number): void {
  const w = m.weights();
  const rng = new Rng(seed);
  for (const name of ['D', 'norm.weight', 'conv1d.bias']) {
    const v = w[name];
    tf.tidy(() => v.assign(tf.add(v, tf.mul(0.5, rng.randn(v.shape)))));
  }
  const [lo, hi] = m.config.dtLimit;
  if (lo > 0 && hi != null) {
    const mid = Math.sqrt(lo * hi);
    const invSoftplus = Math.log(Math.expm1(mid));
    tf.tidy(() => w.dt_bias.assign(tf.add(invSoftplus, tf.mul(0.3, rng.randn(w.dt_bias.shape)))));
  }
}

/** Forward and every gradient (x and each weight) of sum(f(x) * dy). */
function valueAndGrads(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, dy: tf.Tensor, vars: Record<string, tf.Variable>) {
  const names = Object.keys(vars);
  const { value, grads } = tf.tidy(() => {
    const xv = tf.variable(x, true);
    const r = tf.variableGrads(() => tf.sum(tf.mul(f(xv), dy)) as tf.Scalar, [...names.map((n) => vars[n]), xv]);
    const out = { value: tf.keep(f(x)), grads: { ...r.grads } };
    const byName: Record<string, tf.Tensor> = {};
    for (const n of names) byName[n] = out.grads[vars[n].name];
    byName.x = out.grads[xv.name];
    tf.dispose(r.value);
    xv.dispose();
    return { value: out.value, grads: byName };
  });
  return { value, grads };
}

async function compareWithReference(cfg: Mamba2Config, [B, L]: [number, number], seed: number, tol = { out: 1e-4, grad: 1e-3 }) {
  const m = new Mamba2Mixer(cfg, new Rng(seed));
  perturb(m, seed + 1);
  const D = m.config.dModel;
  const x = tf.tensor(randomArray(B * L * D, seed + 2, -2, 2), [B, L, D]);
  const dy = tf.tensor(randomArray(B * L * D, seed + 3), [B, L, D]);
  const w = m.weights();
  await withNoLeaks(async () => {
    const got = valueAndGrads((t) => m.apply(t), x, dy, w);
    const ref = valueAndGrads((t) => mamba2Reference(w, t, m.config), x, dy, w);
    const tag = `seed ${seed}, cfg ${JSON.stringify(cfg)}, B ${B} L ${L}`;
    const outErr = relErr(await got.value.data(), await ref.value.data());
    expect(outErr, tag).toBeLessThan(tol.out);
    const errs: Record<string, number> = { out: outErr };
    for (const name of [...NAMES, 'x']) {
      const g = await got.grads[name].data();
      const gr = await ref.grads[name].data();
      expect(g.every(Number.isFinite), `${name} finite, ${tag}`).toBe(true);
      expect(
        g.some((v) => v !== 0),
        `${name} nonzero, ${tag}`,
      ).toBe(true);
      errs[name] = relErr(g, gr);
      expect(errs[name], `grad ${name}, ${tag}`).toBeLessThan(tol.grad);
    }
    console.log(
      `mamba2 vs reference (${tf.getBackend()}, B ${B} L ${L}): ${JSON.stringify(errs, (_, v) => (typeof v === 'number' ? Number(v.toExponential(2)) : v))}`,
    );
    tf.dispose([got.value, ref.value, ...Object.values(got.grads), ...Object.values(ref.grads)]);
  });
  tf.dispose([x, dy]);
  m.dispose();
}

describe('Mamba2Mixer parameters', () => {
  it('has exactly mamba_ssm state-dict names with PyTorch layouts', async (ctx) => {
    await useBackend('cpu', ctx);
    const m = new Mamba2Mixer({ dModel: 16, dState: 8, headdim: 8, ngroups: 2 }, new Rng(1));
    const w = m.weights();
    // d_inner 32, nheads 4, conv_dim 32 + 2*2*8 = 64, d_in_proj 32 + 64 + 4 = 100
    expect(Object.keys(w).sort()).toEqual([...NAMES].sort());
    const shapes = Object.fromEntries(Object.entries(w).map(([k, v]) => [k, v.shape]));
    expect(shapes).toEqual({
      'in_proj.weight': [100, 16],
      'conv1d.weight': [64, 1, 4],
      'conv1d.bias': [64],
      dt_bias: [4],
      A_log: [4],
      D: [4],
      'norm.weight': [32],
      'out_proj.weight': [16, 32],
    });
    for (const v of Object.values(w)) {
      expect(v).toBeInstanceOf(tf.Variable);
      expect(v.trainable).toBe(true);
      expect(v.dtype).toBe('float32');
    }
    m.dispose();
    // The paper's XL setting: d_model 1152, d_state 256, expand 2, headdim 64 -> 36 heads.
    const xl = mamba2WeightShapes(resolveMamba2Config({ dModel: 1152 }));
    expect(xl['in_proj.weight']).toEqual([2 * 2304 + 2 * 256 + 36, 1152]);
    expect(xl['conv1d.weight']).toEqual([2304 + 512, 1, 4]);
    expect(xl.A_log).toEqual([36]);
    expect(resolveMamba2Config({ dModel: 8, headdim: 4 })).toMatchObject({ dState: 256, expand: 2, ngroups: 1, dConv: 4, chunkSize: 64 });
  });

  it('initialises as Mamba-2 does, from the Rng only', async (ctx) => {
    await useBackend('cpu', ctx);
    const seed = freshSeed();
    const cfg = { dModel: 128, dState: 4, headdim: 1 }; // 256 heads: enough draws for statistics
    const m = new Mamba2Mixer(cfg, new Rng(seed));
    const w = m.weights();
    const tag = `seed ${seed}`;
    const A = Array.from(await tf.tidy(() => tf.neg(tf.exp(w.A_log))).data());
    expect(Math.min(...A), tag).toBeGreaterThanOrEqual(-16 * (1 + 1e-6));
    expect(Math.max(...A), tag).toBeLessThanOrEqual(-1 * (1 - 1e-6));
    const dt = Array.from(await tf.tidy(() => tf.softplus(w.dt_bias)).data());
    expect(Math.min(...dt), tag).toBeGreaterThanOrEqual(1e-3 * (1 - 1e-4));
    expect(Math.max(...dt), tag).toBeLessThanOrEqual(1e-1 * (1 + 1e-4));
    // log-uniform: mean of log dt is the midpoint of [log 1e-3, log 1e-1]; the std of the mean over 256
    // heads is 1.33/16 = 0.083, so 0.5 is 6 of them (a true draw fails once in 5e8 runs; at 0.4 it was
    // once in 7e5; 200 seeds reached 0.24). Uniform instead of log-uniform draws would be off by 1.35.
    const meanLog = dt.reduce((a, v) => a + Math.log(v), 0) / dt.length;
    expect(Math.abs(meanLog - Math.log(1e-2)), tag).toBeLessThan(0.5);
    expect(Array.from(await w.D.data()).every((v) => v === 1)).toBe(true);
    expect(Array.from(await w['norm.weight'].data()).every((v) => v === 1)).toBe(true);
    // PyTorch defaults: U(-b, b), b = 1/sqrt(fan_in); check range and std = b / sqrt 3.
    for (const [name, fanIn] of [
      ['in_proj.weight', 128],
      ['out_proj.weight', 256],
      ['conv1d.weight', 4],
    ] as const) {
      const v = Array.from(await w[name].data());
      const b = 1 / Math.sqrt(fanIn);
      const maxAbs = v.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
      const std = Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
      expect(maxAbs, `${name} ${tag}`).toBeLessThanOrEqual(b);
      expect(Math.abs(std / (b / Math.sqrt(3)) - 1), `${name} ${tag}`).toBeLessThan(0.1);
    }
    // Same seed, same weights; another seed, other weights.
    const m2 = new Mamba2Mixer(cfg, new Rng(seed));
    const m3 = new Mamba2Mixer(cfg, new Rng(seed + 1));
    expect(relErr(await m2.weights()['in_proj.weight'].data(), await w['in_proj.weight'].data())).toBe(0);
    expect(relErr(await m2.weights().dt_bias.data(), await w.dt_bias.data())).toBe(0);
    expect(relErr(await m3.weights()['in_proj.weight'].data(), await w['in_proj.weight'].data())).toBeGreaterThan(0.5);
    for (const k of [m, m2, m3]) k.dispose();
  });

  it('rejects bad configs and bad inputs with an InputError', async (ctx) => {
    await useBackend('cpu', ctx);
    expect(() => new Mamba2Mixer({ dModel: 10, headdim: 8 }, new Rng(0))).toThrow(/must be an integer multiple of config.headdim/);
    expect(() => new Mamba2Mixer({ dModel: 8, headdim: 4, ngroups: 3 }, new Rng(0))).toThrow(/divisible by config.ngroups/);
    expect(() => new Mamba2Mixer({ dModel: 0 }, new Rng(0))).toThrow(InputError);
    const m = new Mamba2Mixer({ dModel: 8, dState: 4, headdim: 4 }, new Rng(0));
    const bad: [tf.Tensor, RegExp][] = [
      [tf.zeros([5, 8]), /x must have rank 3 \[B, L, D\], got shape \[5, 8\]/],
      [tf.zeros([1, 5, 6]), /x must have shape \[B, L, 8\] \(dModel = 8\), got \[1, 5, 6\]/],
      [tf.zeros([1, 5, 8], 'int32'), /x must be float32, got int32/],
      [tf.zeros([1, 0, 8]), /at least one batch entry and one token/],
    ];
    for (const [x, re] of bad) {
      expect(() => m.apply(x)).toThrow(InputError);
      expect(() => m.apply(x)).toThrow(re);
      x.dispose();
    }
    m.dispose();
    expect(() => m.apply(tf.zeros([1, 2, 8]))).toThrow(/disposed/);
  });
});

describe('Mamba2Mixer forward and gradients', () => {
  it('matches the sequential tfjs-ops reference on cpu (several shapes, L not a multiple of the chunk)', async (ctx) => {
    const info = await useBackend('cpu', ctx);
    console.log(`Mamba2Mixer: running on ${describeInfo(info)}`);
    const seed = freshSeed();
    await compareWithReference({ dModel: 8, dState: 4, headdim: 4, chunkSize: 4 }, [2, 10], seed);
    await compareWithReference({ dModel: 12, dState: 6, headdim: 3, ngroups: 2, chunkSize: 3, dConv: 3 }, [1, 7], seed + 10);
    await compareWithReference({ dModel: 6, dState: 5, expand: 1, headdim: 2, chunkSize: 16, dtLimit: [0.01, 0.3] }, [3, 5], seed + 20);
  });

  it('splits the batch over several ssdScan calls when the chunk states would pass the binding limit, with the same result', async (ctx) => {
    await useBackend('cpu', ctx);
    const seed = freshSeed();
    const m = new Mamba2Mixer({ dModel: 8, dState: 4, headdim: 4, chunkSize: 4 }, new Rng(seed));
    const x = tf.tensor(randomArray(5 * 7 * 8, seed + 1, -2, 2), [5, 7, 8]);
    const w = m.weights();
    // one sequence's chunk states: (ceil(L / Q) + 1) · H · P · N floats
    const perSeq = (Math.ceil(7 / 4) + 1) * 4 * 4 * 4 * 4;
    try {
      await withNoLeaks(async () => {
        const whole = tf.tidy(() => mamba2Forward(w, x, m.config));
        const gw = tf.grad((t: tf.Tensor) => mamba2Forward(w, t, m.config))(x);
        for (const per of [1, 2]) {
          setSsdBindingLimitForTests(per * perSeq + 4);
          const split = tf.tidy(() => mamba2Forward(w, x, m.config));
          expect(relErr(await split.data(), await whole.data()), `seed ${seed}`).toBeLessThan(1e-6);
          const g = tf.grad((t: tf.Tensor) => mamba2Forward(w, t, m.config))(x);
          expect(relErr(await g.data(), await gw.data()), `seed ${seed}`).toBeLessThan(1e-6);
          tf.dispose([split, g]);
        }
        tf.dispose([whole, gw]);
      });
    } finally {
      setSsdBindingLimitForTests(null);
    }
    x.dispose();
    m.dispose();
  });

  it('matches the reference on wasm', async (ctx) => {
    await useBackend('wasm', ctx);
    await compareWithReference({ dModel: 8, dState: 4, headdim: 4, ngroups: 2, chunkSize: 4 }, [1, 9], freshSeed());
  });

  it('matches the reference on webgpu (tiny)', async (ctx) => {
    const info = await useBackend('webgpu', ctx);
    console.log(`Mamba2Mixer: running on ${describeInfo(info)}`);
    await compareWithReference({ dModel: 8, dState: 4, headdim: 4, ngroups: 2, chunkSize: 4 }, [1, 6], freshSeed());
  });
});
