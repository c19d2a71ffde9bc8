/**
 * The DiT against a float64 PixArt-α forward on one backend (default webgpu): prints one JSON line with
 * the relative error of the whole output per caption case and per timestep (`cases`), and with `--ops`
 * each op's share of it (`opShares`: the float64 reference with that one op run by this backend's
 * kernel, and by an exactly rounded float32 op), plus the timestep features before and after issue 18
 * (`features`: the share and the time per call of `timestepFeatures` and of the tf.cos/tf.sin ops it
 * replaced). No network, no files: weights and inputs are seeded.
 *
 * Here (SwiftShader), after `npm run build`:
 *   npx esbuild bench/pixart-parity.ts --bundle --platform=node --format=esm --outfile=.gpu/pixart-parity.mjs \
 *     --external:'*.node' --banner:js="import{createRequire}from'module';const require=createRequire(import.meta.url);"
 *   (with dawn.node at .gpu/dist/linux-x64/dawn.node, as pack.sh leaves it)
 *   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json node .gpu/pixart-parity.mjs --ops
 * GPU machine: `bash ../shared/device/pack.sh bench/pixart-parity.ts`, then, carrying .gpu:
 *   bash .gpu/run.sh node .gpu/pixart-parity.mjs --ops
 * Flags: --backend webgpu|wasm|cpu, --seed N (default 1), --ops. Exit status 1 when a case exceeds 2e-5.
 */
import { currentBackend, initBackend } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { create, globals } from 'webgpu';
import { timestepFeatures } from '../packages/dit/src/model/ops/timestep-features.js';
import { opShares, PARITY_TIMESTEPS, parityErrors, shareOf } from '../packages/dit/src/model/pixart-parity.js';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
const backend = (flag('--backend') ?? 'webgpu') as 'webgpu' | 'wasm' | 'cpu';
const seed = Number(flag('--seed') ?? 1);
if (!['webgpu', 'wasm', 'cpu'].includes(backend) || !Number.isInteger(seed)) {
  console.error('usage: pixart-parity [--backend webgpu|wasm|cpu] [--seed N] [--ops]');
  process.exit(2);
}
if (backend === 'webgpu') {
  // Dawn's binding, imported statically so a bundle carries it; navigator.gpu must exist before initBackend.
  Object.assign(globalThis, globals);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true, writable: true });
}
await initBackend({ backend });

/** The timestep features as the DiT computed them before issue 18: tfjs's cos and sin of float32 t·ω. */
function tfOpsFeatures(t: tf.Tensor, dim = 256): tf.Tensor {
  const half = dim / 2;
  const freqs = Float32Array.from({ length: half }, (_, k) => Math.exp((-Math.log(10000) * k) / half));
  return tf.tidy(() => {
    const a = tf.mul(tf.reshape(t, [-1, 1]), tf.tensor2d(freqs, [1, half])); // [N, half]
    return tf.concat([tf.cos(a), tf.sin(a)], 1); // [N, dim]
  });
}

/** Median µs per call of `f` over 5 runs of `reps` queued calls, each run ending in one read-back. */
async function usPerCall(f: () => tf.Tensor, reps = 100): Promise<number> {
  const warm = f();
  await warm.data();
  warm.dispose();
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < reps - 1; i++) f().dispose();
    const last = f();
    await last.data();
    last.dispose();
    runs.push(((performance.now() - t0) * 1000) / reps);
  }
  return runs.sort((a, b) => a - b)[2]!;
}

const round = (v: number) => Number(v.toPrecision(3));
const errors = await parityErrors(seed);
const cases = Object.fromEntries(Object.entries(errors).map(([k, e]) => [k, { all: round(e.all), perTimestep: e.perSample.map(round) }]));
const worst = Math.max(...Object.values(errors).map((e) => Math.max(e.all, ...e.perSample)));
let extra = {};
if (args.includes('--ops')) {
  const shares = await opShares(seed);
  const read = async (t: tf.Tensor) => {
    const v = Float64Array.from(await t.data());
    t.dispose();
    return v;
  };
  const tfOpsShare = await shareOf(seed, { timestepFeatures: (t) => read(tfOpsFeatures(tf.tensor1d(Float32Array.from(t)))) });
  const t2 = tf.tensor1d([17, 611]);
  const features = {
    share: round(shares.timestepFeatures.backend),
    shareTfOps: round(tfOpsShare),
    usPerCall: round(await usPerCall(() => timestepFeatures(t2))),
    usPerCallTfOps: round(await usPerCall(() => tfOpsFeatures(t2))),
  };
  t2.dispose();
  extra = {
    opShares: Object.fromEntries(Object.entries(shares).map(([k, e]) => [k, { backend: round(e.backend), rounded: round(e.rounded) }])),
    features,
  };
}
const info = currentBackend();
console.log(
  JSON.stringify({
    backend: info?.backend,
    adapter: info?.adapter,
    seed,
    timesteps: PARITY_TIMESTEPS,
    worst: round(worst),
    cases,
    ...extra,
  }),
);
process.exit(worst <= 2e-5 ? 0 : 1);
