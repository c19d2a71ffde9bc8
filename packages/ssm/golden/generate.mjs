#!/usr/bin/env node
/**
 * Makes the golden vectors of the scan ops in this folder: seeded inputs, then outputs and gradients
 * from the plain float64 recurrence, one token at a time, with its reverse-time adjoint written out
 * by hand. Nothing here imports the package: it is the independent check the tests hold the kernels
 * and the tfjs-ops references to.
 *
 *   node packages/ssm/golden/generate.mjs            # rewrite the *.json files here
 *   node packages/ssm/golden/generate.mjs --check    # exit 1 unless the files equal what this makes
 *   node packages/ssm/golden/generate.mjs --against DIR
 *        # recompute every case of DIR (same format, other inputs) and compare with its stored results
 *
 * Every run also checks the hand-written adjoint against central differences of the float64 forward
 * on a sample of coordinates of every input, and stops if they disagree.
 *
 * Semantics are those of mamba_ssm's `mamba_chunk_scan_combined` (ssdScan) and `selective_scan_fn`
 * (selectiveScan), written down in README.md.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));

// ---------------------------------------------------------------------------------------------- RNG

/** mulberry32: 32-bit seeded uniforms in [0, 1). */
function rng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => {
    const u = 1 - next(); // (0, 1]: log is finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
  return {
    uniform: (n, lo, hi) => Array.from({ length: n }, () => Math.fround(lo + (hi - lo) * next())),
    normal: (n, mean = 0, std = 1) => Array.from({ length: n }, () => Math.fround(mean + std * normal())),
  };
}

// ------------------------------------------------------------------------------------- scalar helpers

const sigmoid = (v) => 1 / (1 + Math.exp(-v));
const silu = (v) => v * sigmoid(v);
const dsilu = (v) => {
  const s = sigmoid(v);
  return s * (1 + v * (1 - s));
};

/**
 * The time step as the ops use it, and its derivative: v = dt + bias, softplus if asked (the identity
 * above 20, as torch and triton compute it; derivative sigmoid, 1 above 20), clamped to [lo, hi] only when the limit is not the default (0, +inf), as
 * mamba_ssm does; the clamp passes the gradient inside [lo, hi], bounds included (torch.clamp).
 */
function timeStep(raw, bias, soft, limit) {
  let v = raw + bias;
  let d = 1;
  if (soft && v <= 20) {
    d = sigmoid(v);
    v = Math.log1p(Math.exp(v));
  }
  const [lo, hi] = limit;
  if (lo !== 0 || hi !== Number.POSITIVE_INFINITY) {
    if (v < lo) return [lo, 0];
    if (v > hi) return [hi, 0];
  }
  return [v, d];
}

// ------------------------------------------------------------------------------------------- ssdScan

/**
 * ssdScan in float64. x [Bz, L, H, P], dt [Bz, L, H], A [H], B, C [Bz, L, G, N], D [H] or [H, P],
 * z like x, dtBias [H], initialStates [Bz, H, P, N]. With `up` (upstream y and finalStates) it also
 * returns d(Σ y·up.y + Σ finalStates·up.finalStates)/d(every input).
 */
function ssd(inp, opts, up) {
  const [Bz, L, H, P] = inp.x.shape;
  const [, , G, N] = inp.B.shape;
  const hpg = H / G;
  const soft = opts.dtSoftplus === true;
  const limit = [opts.dtLimit?.[0] ?? 0, opts.dtLimit?.[1] ?? Number.POSITIVE_INFINITY];
  const v = (k) => inp[k]?.data;
  const [x, dt, A, B, C, D, z, dtBias, h0] = ['x', 'dt', 'A', 'B', 'C', 'D', 'z', 'dtBias', 'initialStates'].map(v);
  const perChannelD = D != null && inp.D.shape.length === 2;
  const y = new Float64Array(Bz * L * H * P); // before the gate
  const fin = new Float64Array(Bz * H * P * N);
  const g = up && Object.fromEntries(Object.keys(inp).map((k) => [k, new Float64Array(inp[k].data.length)]));
  const xi = (b, t, h, p) => ((b * L + t) * H + h) * P + p;
  const bi = (b, t, gr, n) => ((b * L + t) * G + gr) * N + n;
  const Dv = (h, p) => (D == null ? 0 : perChannelD ? D[h * P + p] : D[h]);
  for (let b = 0; b < Bz; b++) {
    for (let h = 0; h < H; h++) {
      const gr = Math.floor(h / hpg);
      const states = [new Float64Array(P * N)]; // states[t + 1] = state after token t
      if (h0) for (let i = 0; i < P * N; i++) states[0][i] = h0[(b * H + h) * P * N + i];
      const steps = [];
      for (let t = 0; t < L; t++) {
        const [s, ds] = timeStep(dt[(b * L + t) * H + h], dtBias ? dtBias[h] : 0, soft, limit);
        const e = Math.exp(s * A[h]);
        const prev = states[t];
        const cur = new Float64Array(P * N);
        for (let p = 0; p < P; p++) {
          let acc = 0;
          for (let n = 0; n < N; n++) {
            const val = e * prev[p * N + n] + s * x[xi(b, t, h, p)] * B[bi(b, t, gr, n)];
            cur[p * N + n] = val;
            acc += val * C[bi(b, t, gr, n)];
          }
          y[xi(b, t, h, p)] = acc + Dv(h, p) * x[xi(b, t, h, p)];
        }
        states.push(cur);
        steps.push({ s, ds, e });
      }
      fin.set(states[L], (b * H + h) * P * N);
      if (!up) continue;
      // reverse time: gs = d loss / d state_t, starting from the upstream of finalStates
      const gs = new Float64Array(P * N);
      for (let i = 0; i < P * N; i++) gs[i] = up.finalStates[(b * H + h) * P * N + i];
      for (let t = L - 1; t >= 0; t--) {
        const { s, ds, e } = steps[t];
        const cur = states[t + 1];
        const prev = states[t];
        let dS = 0; // d loss / d s
        let dE = 0; // d loss / d e
        for (let p = 0; p < P; p++) {
          const k = xi(b, t, h, p);
          let dy = up.y[k];
          if (z) {
            g.z[k] += dy * y[k] * dsilu(z[k]);
            dy *= silu(z[k]);
          }
          if (D) {
            if (perChannelD) g.D[h * P + p] += dy * x[k];
            else g.D[h] += dy * x[k];
            g.x[k] += dy * Dv(h, p);
          }
          for (let n = 0; n < N; n++) {
            const c = bi(b, t, gr, n);
            g.C[c] += dy * cur[p * N + n];
            const gsn = gs[p * N + n] + dy * C[c]; // this token's y reads the state too
            dE += gsn * prev[p * N + n];
            dS += gsn * x[k] * B[c];
            g.x[k] += gsn * s * B[c];
            g.B[c] += gsn * s * x[k];
            gs[p * N + n] = gsn * e; // on to state_{t-1}
          }
        }
        dS += dE * e * A[h];
        g.A[h] += dE * e * s;
        const dRaw = dS * ds;
        g.dt[(b * L + t) * H + h] += dRaw;
        if (dtBias) g.dtBias[h] += dRaw;
      }
      if (h0) for (let i = 0; i < P * N; i++) g.initialStates[(b * H + h) * P * N + i] += gs[i];
    }
  }
  if (z) for (let i = 0; i < y.length; i++) y[i] *= silu(z[i]);
  return { outputs: { y, finalStates: fin }, grads: g };
}

// ------------------------------------------------------------------------------------- selectiveScan

/**
 * selectiveScan in float64. u, delta, z [Bz, Dm, L], A [Dm, N], B, C [Bz, N, L] or [Bz, G, N, L],
 * D, deltaBias [Dm]. With `up` (upstream y and lastState) it also returns the gradients.
 */
function sscan(inp, opts, up) {
  const [Bz, Dm, L] = inp.u.shape;
  const grouped = inp.B.shape.length === 4;
  const G = grouped ? inp.B.shape[1] : 1;
  const N = inp.A.shape[1];
  const dpg = Dm / G;
  const soft = opts.deltaSoftplus === true;
  const v = (k) => inp[k]?.data;
  const [u, delta, A, B, C, D, z, bias] = ['u', 'delta', 'A', 'B', 'C', 'D', 'z', 'deltaBias'].map(v);
  const y = new Float64Array(Bz * Dm * L);
  const last = new Float64Array(Bz * Dm * N);
  const g = up && Object.fromEntries(Object.keys(inp).map((k) => [k, new Float64Array(inp[k].data.length)]));
  const ui = (b, d, t) => (b * Dm + d) * L + t;
  const bi = (b, gr, n, t) => ((b * G + gr) * N + n) * L + t;
  const none = [0, Number.POSITIVE_INFINITY];
  for (let b = 0; b < Bz; b++) {
    for (let d = 0; d < Dm; d++) {
      const gr = Math.floor(d / dpg);
      const states = [new Float64Array(N)];
      const steps = [];
      for (let t = 0; t < L; t++) {
        const [s, ds] = timeStep(delta[ui(b, d, t)], bias ? bias[d] : 0, soft, none);
        const e = Array.from({ length: N }, (_, n) => Math.exp(s * A[d * N + n]));
        const cur = new Float64Array(N);
        let acc = 0;
        for (let n = 0; n < N; n++) {
          cur[n] = e[n] * states[t][n] + s * B[bi(b, gr, n, t)] * u[ui(b, d, t)];
          acc += cur[n] * C[bi(b, gr, n, t)];
        }
        y[ui(b, d, t)] = acc + (D ? D[d] * u[ui(b, d, t)] : 0);
        states.push(cur);
        steps.push({ s, ds, e });
      }
      last.set(states[L], (b * Dm + d) * N);
      if (!up) continue;
      const gs = Float64Array.from({ length: N }, (_, n) => up.lastState[(b * Dm + d) * N + n]);
      for (let t = L - 1; t >= 0; t--) {
        const { s, ds, e } = steps[t];
        const k = ui(b, d, t);
        let dy = up.y[k];
        if (z) {
          g.z[k] += dy * y[k] * dsilu(z[k]);
          dy *= silu(z[k]);
        }
        if (D) {
          g.D[d] += dy * u[k];
          g.u[k] += dy * D[d];
        }
        let dS = 0;
        for (let n = 0; n < N; n++) {
          const c = bi(b, gr, n, t);
          g.C[c] += dy * states[t + 1][n];
          const gsn = gs[n] + dy * C[c];
          const dE = gsn * states[t][n];
          dS += dE * e[n] * A[d * N + n] + gsn * B[c] * u[k];
          g.A[d * N + n] += dE * e[n] * s;
          g.u[k] += gsn * s * B[c];
          g.B[c] += gsn * s * u[k];
          gs[n] = gsn * e[n];
        }
        const dRaw = dS * ds;
        g.delta[k] += dRaw;
        if (bias) g.deltaBias[d] += dRaw;
      }
    }
  }
  if (z) for (let i = 0; i < y.length; i++) y[i] *= silu(z[i]);
  return { outputs: { y, lastState: last }, grads: g };
}

const OPS = { ssdScan: ssd, selectiveScan: sscan };
const FINAL = { ssdScan: 'finalStates', selectiveScan: 'lastState' };

// ------------------------------------------------------------------------------------------- cases

/**
 * The cases: the shapes, options and input distributions of the vectors first shipped beside the
 * repository (in ../shared/golden), so `--against` can compare the two sets case by case.
 */
const CASES = [
  {
    op: 'selectiveScan',
    name: 'sscan-basic',
    seed: 101,
    options: { deltaSoftplus: false, returnLastState: true },
    inputs: (r) => ({
      u: [[2, 8, 50], r.normal(800)],
      delta: [[2, 8, 50], r.uniform(800, 0, 0.2)],
      A: [[8, 16], r.normal(128, 0, 0.5).map((v) => Math.fround(-Math.exp(v)))],
      B: [[2, 16, 50], r.normal(1600)],
      C: [[2, 16, 50], r.normal(1600)],
    }),
  },
  {
    op: 'selectiveScan',
    name: 'sscan-full',
    seed: 102,
    options: { deltaSoftplus: true, returnLastState: true },
    inputs: (r) => ({
      u: [[2, 8, 100], r.normal(1600)],
      delta: [[2, 8, 100], r.normal(1600, -2, 1)],
      A: [[8, 16], r.normal(128, 0, 0.5).map((v) => Math.fround(-Math.exp(v)))],
      B: [[2, 2, 16, 100], r.normal(6400)],
      C: [[2, 2, 16, 100], r.normal(6400)],
      D: [[8], r.normal(8, 0, 0.5)],
      z: [[2, 8, 100], r.normal(1600)],
      deltaBias: [[8], r.normal(8, -0.3, 0.5)],
    }),
  },
  {
    op: 'ssdScan',
    name: 'ssd-basic',
    seed: 201,
    options: { chunkSize: 64, dtSoftplus: false, dtLimit: [0, null], returnFinalStates: true },
    inputs: (r) => ({
      x: [[1, 64, 2, 8], r.normal(1024)],
      dt: [[1, 64, 2], r.uniform(128, 0.001, 0.1)],
      A: [[2], r.uniform(2, -4.6, -3.3)],
      B: [[1, 64, 1, 16], r.normal(1024)],
      C: [[1, 64, 1, 16], r.normal(1024)],
    }),
  },
  {
    op: 'ssdScan',
    name: 'ssd-d-per-channel-limit',
    seed: 202,
    // seqlen 37 is not a multiple of the chunk; the limit clamps some steps at each bound
    options: { chunkSize: 16, dtSoftplus: true, dtLimit: [0.001, 0.1], returnFinalStates: true },
    inputs: (r) => ({
      x: [[1, 37, 3, 4], r.normal(444)],
      dt: [[1, 37, 3], r.normal(111, -4, 1.5)],
      A: [[3], r.uniform(3, -4, -1.7)],
      B: [[1, 37, 3, 8], r.normal(888)],
      C: [[1, 37, 3, 8], r.normal(888)],
      D: [[3, 4], r.normal(12)],
    }),
  },
  {
    op: 'ssdScan',
    name: 'ssd-full',
    seed: 203,
    options: { chunkSize: 32, dtSoftplus: true, dtLimit: [0, null], returnFinalStates: true },
    inputs: (r) => ({
      x: [[2, 100, 4, 16], r.normal(12800)],
      dt: [[2, 100, 4], r.normal(800, -4, 1)],
      A: [[4], r.uniform(4, -6.5, -1.5)],
      B: [[2, 100, 2, 32], r.normal(12800)],
      C: [[2, 100, 2, 32], r.normal(12800)],
      D: [[4], r.normal(4)],
      z: [[2, 100, 4, 16], r.normal(12800)],
      dtBias: [[4], r.normal(4, 0, 0.5)],
      initialStates: [[2, 4, 16, 32], r.normal(4096, 0, 0.5)],
    }),
  },
];

// --------------------------------------------------------------------------------------- the files

/** The shortest decimal that reads back as the same float32 (files stay about half the size). */
function f32(v) {
  const f = Math.fround(v);
  if (!Number.isFinite(f)) throw new Error(`non-finite value ${v}`);
  for (let p = 6; p < 10; p++) {
    const s = Number(f.toPrecision(p));
    if (Math.fround(s) === f) return s;
  }
  return f;
}

const tensor = (shape, data) => ({ shape, data: Array.from(data, f32) });

/** One case with its outputs and gradients, in the file format (README.md). */
function make(c) {
  const r = rng(c.seed);
  const inputs = Object.fromEntries(Object.entries(c.inputs(r)).map(([k, [shape, data]]) => [k, { shape, data }]));
  const fin = FINAL[c.op];
  const first = OPS[c.op](inputs, c.options);
  const upstream = {
    y: { shape: [...inputs[c.op === 'ssdScan' ? 'x' : 'u'].shape], data: r.normal(first.outputs.y.length) },
    [fin]: { shape: finalShape(c.op, inputs), data: r.normal(first.outputs[fin].length) },
  };
  return { c, inputs, upstream };
}

function finalShape(op, inputs) {
  if (op === 'ssdScan') {
    const [Bz, , H, P] = inputs.x.shape;
    return [Bz, H, P, inputs.B.shape[3]];
  }
  return [inputs.u.shape[0], inputs.u.shape[1], inputs.A.shape[1]];
}

function evaluate(op, inputs, options, upstream) {
  const up = Object.fromEntries(Object.entries(upstream).map(([k, v]) => [k, v.data]));
  return OPS[op](inputs, options, up);
}

function document({ c, inputs, upstream }) {
  const { outputs, grads } = evaluate(c.op, inputs, c.options, upstream);
  const fin = FINAL[c.op];
  return {
    op: c.op,
    name: c.name,
    options: c.options,
    inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tensor(v.shape, v.data)])),
    outputs: { y: tensor(upstream.y.shape, outputs.y), [fin]: tensor(upstream[fin].shape, outputs[fin]) },
    upstream: Object.fromEntries(Object.entries(upstream).map(([k, v]) => [k, tensor(v.shape, v.data)])),
    grads: Object.fromEntries(Object.keys(inputs).map((k) => [k, tensor(inputs[k].shape, grads[k])])),
  };
}

// ------------------------------------------------------------------------------------------- checks

/** ‖a − b‖ / ‖b‖. */
function relErr(a, b) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-300);
}

/**
 * The hand-written adjoint against central differences of the float64 loss, at up to `per` random
 * coordinates of every input (all of them for small inputs). Returns the worst relative error.
 */
function checkAdjoint({ c, inputs, upstream }, per = 24) {
  const fin = FINAL[c.op];
  const { grads } = evaluate(c.op, inputs, c.options, upstream);
  const loss = () => {
    const { outputs } = OPS[c.op](inputs, c.options);
    let s = 0;
    for (let i = 0; i < outputs.y.length; i++) s += outputs.y[i] * upstream.y.data[i];
    for (let i = 0; i < outputs[fin].length; i++) s += outputs[fin][i] * upstream[fin].data[i];
    return s;
  };
  const pick = rng(c.seed + 7);
  let worst = 0;
  for (const [k, t] of Object.entries(inputs)) {
    const n = t.data.length;
    const idx = n <= per ? [...Array(n).keys()] : pick.uniform(per, 0, n).map((v) => Math.min(n - 1, Math.floor(v)));
    const fd = [];
    const an = [];
    for (const i of idx) {
      const keep = t.data[i];
      const eps = 1e-6 * Math.max(1, Math.abs(keep));
      t.data[i] = keep + eps;
      const hi = loss();
      t.data[i] = keep - eps;
      const lo = loss();
      t.data[i] = keep;
      fd.push((hi - lo) / (2 * eps));
      an.push(grads[k][i]);
    }
    const e = relErr(an, fd);
    worst = Math.max(worst, e);
    if (!(e < 1e-6)) throw new Error(`${c.name}: the adjoint of ${k} disagrees with central differences (${e.toExponential(2)})`);
  }
  return worst;
}

/** Recomputes a stored case from its own inputs and upstream; returns the worst relative error per tensor. */
function compareStored(doc) {
  const inputs = Object.fromEntries(Object.entries(doc.inputs).map(([k, v]) => [k, { shape: v.shape, data: v.data }]));
  const options = { ...doc.options, dtLimit: doc.options.dtLimit && [doc.options.dtLimit[0], doc.options.dtLimit[1] ?? Infinity] };
  const { outputs, grads } = evaluate(doc.op, inputs, options, doc.upstream);
  const errs = {};
  for (const [k, v] of Object.entries(doc.outputs)) errs[k] = relErr(outputs[k], v.data);
  for (const [k, v] of Object.entries(doc.grads)) errs[`d${k}`] = relErr(grads[k], v.data);
  return errs;
}

// ---------------------------------------------------------------------------------------------- main

const args = process.argv.slice(2);
const fmt = (errs) =>
  Object.entries(errs)
    .map(([k, e]) => `${k} ${e.toExponential(1)}`)
    .join(', ');
if (args[0] === '--against') {
  const dir = args[1];
  if (!dir) {
    process.stderr.write('usage: generate.mjs --against DIR\n');
    process.exit(2);
  }
  let worst = 0;
  for (const f of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const errs = compareStored(JSON.parse(readFileSync(join(dir, f), 'utf8')));
    worst = Math.max(worst, ...Object.values(errs));
    process.stdout.write(`${f}: ${fmt(errs)}\n`);
  }
  // the stored files are float32: 1e-6 is a few float32 roundings of the sums
  process.stdout.write(`worst ${worst.toExponential(2)}\n`);
  process.exit(worst < 1e-5 ? 0 : 1);
}
if (args.length > 0 && args[0] !== '--check') {
  process.stderr.write('usage: generate.mjs [--check | --against DIR]\n');
  process.exit(2);
}
let stale = 0;
for (const c of CASES) {
  const made = make(c);
  const fd = checkAdjoint(made);
  const text = `${JSON.stringify(document(made))}\n`;
  const file = join(HERE, `${c.name}.json`);
  if (args[0] === '--check') {
    let old = '';
    try {
      old = readFileSync(file, 'utf8');
    } catch {}
    const same = old === text;
    if (!same) stale++;
    process.stdout.write(
      `${c.name}.json: ${same ? 'up to date' : 'differs from what the generator makes'} (adjoint vs differences ${fd.toExponential(1)})\n`,
    );
  } else {
    writeFileSync(file, text);
    process.stdout.write(`wrote ${c.name}.json (adjoint vs differences ${fd.toExponential(1)})\n`);
  }
}
if (stale > 0) process.exit(1);
