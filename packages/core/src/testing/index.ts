/**
 * Test helpers shared by every package's tests: which backends to run on, relative errors, leak checks.
 * Exported from `@t2md/core/testing`; not part of the runtime API.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type BackendInfo, type BackendName, initBackend, takeWebGPUErrors } from '../backend.js';

const ALL: readonly BackendName[] = ['cpu', 'wasm', 'webgpu'];
const cache = new Map<BackendName, Promise<BackendInfo | string>>();

/**
 * Whether a backend that does not start fails the tests that need it instead of skipping them. cpu and
 * wasm always: both ship as npm dependencies, so one that does not start is a broken install, never a
 * property of the machine. webgpu under `T2MD_REQUIRE_WEBGPU=1` (set by CI, .ci/run), since a machine
 * without a GPU driver or SwiftShader has none.
 */
export function backendRequired(name: BackendName): boolean {
  return name !== 'webgpu' || process.env.T2MD_REQUIRE_WEBGPU === '1';
}

/**
 * Why the tests of `name` do not run in this process, or undefined when they do: `T2MD_TEST_BACKENDS`
 * (a comma list) narrows a local run to some backends; the others are skipped with this reason.
 */
export function excludedReason(name: BackendName): string | undefined {
  const raw = process.env.T2MD_TEST_BACKENDS;
  if (raw == null || raw.trim() === '') return undefined;
  const only = raw.split(',').map((s) => s.trim());
  const unknown = only.filter((b) => !(ALL as readonly string[]).includes(b));
  if (unknown.length > 0) throw new Error(`T2MD_TEST_BACKENDS names unknown backends (${unknown.join(', ')}); use ${ALL.join(', ')}.`);
  return only.includes(name) ? undefined : `T2MD_TEST_BACKENDS=${raw} leaves ${name} out`;
}

/**
 * Starts `name` and returns its info, or undefined when it is not available here and not required
 * (`backendRequired`); a required backend that does not start throws, failing the test.
 */
export async function tryBackend(name: BackendName): Promise<BackendInfo | undefined> {
  let p = cache.get(name);
  if (p == null) {
    p = initBackend({ backend: name }).catch((err: Error) => err.message);
    cache.set(name, p);
  }
  const info = await p;
  if (typeof info === 'string') {
    if (backendRequired(name)) {
      const why = name === 'webgpu' ? 'T2MD_REQUIRE_WEBGPU=1 but WebGPU' : `the ${name} backend (a dependency, required on every machine)`;
      throw new Error(`${why} is unavailable: ${info}`);
    }
    return undefined;
  }
  await initBackend({ backend: name }); // switch to it (cheap once started)
  return info;
}

const told = new Set<string>();

/**
 * Starts `name` for a test, or skips the test (through vitest's context) with the reason, which is
 * also printed once per process so that a run's log says what did not run and why. Only a backend
 * left out by `T2MD_TEST_BACKENDS`, or an unavailable webgpu without `T2MD_REQUIRE_WEBGPU=1`, skips;
 * any other failure to start fails the test.
 */
export async function useBackend(name: BackendName, ctx: { skip: (note?: string) => void }): Promise<BackendInfo> {
  const excluded = excludedReason(name);
  const info = excluded == null ? await tryBackend(name) : undefined;
  if (info == null) {
    const reason = excluded ?? `${name} is not available here (set T2MD_REQUIRE_WEBGPU=1 to make that a failure)`;
    if (!told.has(reason)) {
      told.add(reason);
      process.stderr.write(`skipped: ${reason}\n`);
    }
    ctx.skip(reason);
    throw new Error('unreachable: skipped');
  }
  return info;
}

/**
 * The backends every op test runs on: all three, always, so each appears in the report as run or as
 * skipped with its reason (`useBackend`); `T2MD_TEST_BACKENDS` skips some, it never drops them.
 */
export function testBackends(): BackendName[] {
  return [...ALL];
}

/** A one-line label naming the adapter, printed by tests so the log says where WebGPU ran. */
export function describeInfo(info: BackendInfo): string {
  return info.adapter
    ? `${info.backend} (${info.adapter.vendor}/${info.adapter.architecture}${info.software ? ', software' : ''})`
    : info.backend;
}

/** ‖a − b‖ / ‖b‖ over flat arrays (with ‖b‖ floored at 1e-30). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths differ (${a.length} vs ${b.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  if (!Number.isFinite(num)) return Number.POSITIVE_INFINITY;
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

/** Relative error between two tensors (or a tensor and an array), read with `await data()`. */
export async function tensorRelErr(a: tf.Tensor, b: tf.Tensor | ArrayLike<number>): Promise<number> {
  const av = await a.data();
  const bv = b instanceof tf.Tensor ? await b.data() : b;
  return relErr(av as Float32Array, bv as ArrayLike<number>);
}

/**
 * Runs `fn` and returns its result, throwing unless the number of live tensors afterwards equals the
 * number before plus the tensors `fn` returns (a Tensor, or an array or object of Tensors), which the
 * caller then owns and must dispose.
 */
export async function withNoLeaks<T>(fn: () => Promise<T> | T): Promise<T> {
  const before = tf.memory().numTensors;
  takeWebGPUErrors();
  const result = await fn();
  // A WebGPU validation error (a shader that did not compile) fails silently otherwise: the kernels of
  // its command buffer, the reference's included, then leave stale buffers that may even agree.
  if (tf.getBackend() === 'webgpu') {
    const errors = takeWebGPUErrors();
    if (errors.length > 0) throw new Error(`WebGPU reported ${errors.length} error(s): ${errors[0]}`);
  }
  const returned = countTensors(result);
  const after = tf.memory().numTensors;
  if (after !== before + returned) {
    throw new Error(`leaked ${after - before - returned} tensor(s) (before ${before}, after ${after}, returned ${returned})`);
  }
  return result;
}

/**
 * Runs `fn` and returns the sizes (in elements) of the tensors the engine built from JavaScript arrays
 * meanwhile. On WebGPU each of them is filled on the CPU and uploaded, so a backward pass that builds
 * an activation-sized one (tfjs does for `ones` in its Sum/Mean gradients and for the zero dy of a
 * kernel output nobody used) pays a host round trip on every step.
 */
export async function hostBuiltSizes(fn: () => Promise<void> | void): Promise<number[]> {
  const engine = tf.engine() as unknown as { makeTensor: (...args: unknown[]) => tf.Tensor };
  const original = engine.makeTensor;
  const sizes: number[] = [];
  engine.makeTensor = function (this: unknown, ...args: unknown[]) {
    const t = original.apply(this, args);
    sizes.push(t.size);
    return t;
  };
  try {
    await fn();
  } finally {
    engine.makeTensor = original;
  }
  return sizes;
}

/**
 * The most bytes of distinct tensor data the cpu backend holds at once while `fn` runs, above what it
 * held when `fn` started. Unlike `tf.profile`'s peakBytes, views (reshapes) share their data and count
 * once, so this is the memory an activation schedule really needs.
 */
export async function peakDataBytes(fn: () => Promise<void> | void): Promise<number> {
  if (tf.getBackend() !== 'cpu') throw new Error(`peakDataBytes watches the cpu backend; the backend is ${tf.getBackend()}.`);
  type Cpu = {
    write(values: ArrayBufferView, shape: number[], dtype: string): object;
    disposeData(dataId: object, force?: boolean): boolean;
    data: { has(dataId: object): boolean };
  };
  const be = tf.backend() as unknown as Cpu;
  const { write, disposeData } = be;
  const bytes = new Map<object, number>();
  let live = 0;
  let peak = 0;
  be.write = function (this: Cpu, values, shape, dtype) {
    const id = write.call(this, values, shape, dtype);
    const n = values?.byteLength ?? 0;
    bytes.set(id, n);
    live += n;
    peak = Math.max(peak, live);
    return id;
  };
  be.disposeData = function (this: Cpu, dataId, force) {
    const r = disposeData.call(this, dataId, force);
    const n = bytes.get(dataId);
    if (n != null && !this.data.has(dataId)) {
      live -= n;
      bytes.delete(dataId);
    }
    return r;
  };
  try {
    await fn();
  } finally {
    be.write = write;
    be.disposeData = disposeData;
  }
  return peak;
}

function countTensors(v: unknown): number {
  if (v instanceof tf.Tensor) return v.isDisposed ? 0 : 1;
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + countTensors(x), 0);
  if (v != null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.values(v).reduce((n: number, x) => n + countTensors(x), 0);
  }
  return 0;
}

/** Uniform floats in [lo, hi) from a seeded xorshift (deterministic test inputs). */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0 || 0x9e3779b9;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = lo + ((s >>> 8) / 16777216) * (hi - lo);
  }
  return out;
}

/** A float32 tensor of `shape` holding `randomArray`'s draw of `seed` in [lo, hi). */
export function randomTensor(shape: number[], seed: number, lo = -1, hi = 1): tf.Tensor {
  return tf.tensor(
    randomArray(
      shape.reduce((a, b) => a * b, 1),
      seed,
      lo,
      hi,
    ),
    shape,
  );
}

/**
 * `n` floats in [lo, hi], one uniform draw in each of `n` equal strata, in an order shuffled by `seed`:
 * fresh values whose spread over the range does not depend on the seed. A few plain uniform draws can all
 * land in one corner (all 7 of them below −3 of [−6, 6] about once in 16,000 seeds), where an error
 * relative to the result's norm measures that corner, not the kernel.
 */
export function stratifiedArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const u = randomArray(2 * n, seed, 0, 1);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(u[n + i]! * (i + 1)); // Fisher–Yates
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return Float32Array.from(order, (k, i) => lo + ((k + u[i]!) / n) * (hi - lo));
}

/** A fresh random seed per run, logged by the caller so a failure can be replayed. */
export function freshSeed(): number {
  const env = process.env.T2MD_TEST_SEED;
  return env ? Number(env) : Math.floor(Math.random() * 2 ** 31);
}

/** The plain-loop references of core's kernels (their cpu and wasm kernels before gelu-tanh-host.ts). */
export { geluTanhGradValues, geluTanhValues } from '../ops/gelu-tanh-kernels.js';

/** A dry run of the WebGPU backend for planning device memory (allocations counted, nothing run). */
export { DRY_RUN_LIMITS, type DryRunStats, dryRunWebGPU } from './dry-webgpu.js';
