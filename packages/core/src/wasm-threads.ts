/**
 * Which build of tfjs's wasm backend runs, and on how many threads.
 *
 * tfjs-backend-wasm ships three builds: plain, SIMD, and threaded SIMD (XNNPACK's thread pool on
 * pthreads, i.e. Web Workers over a SharedArrayBuffer). tfjs itself never takes the threaded build in
 * Node (its WASM_HAS_MULTITHREAD_SUPPORT flag is false there: tensorflow/tfjs#3830), because its
 * loader hands the pthread workers blob: URLs that Node's worker_threads cannot open. Node has
 * SharedArrayBuffer and worker_threads, so here the threaded build is loaded with our own locateFile:
 * the workers start from a data: URL module holding tfjs's worker script. In a browser tfjs picks the
 * build itself: threaded only on a cross-origin-isolated page (COOP/COEP headers), else SIMD.
 *
 * XNNPACK parallelises its GEMMs and some elementwise ops; each output element is still computed by
 * one thread in one order, so results do not depend on the thread count.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backendStarted } from './backend-started.js';
import { InputError } from './errors.js';

/** The wasm backend as it runs: which binary, XNNPACK's thread count, and one sentence on why. */
export interface WasmBuildInfo {
  build: 'threaded-simd' | 'simd' | 'plain';
  threads: number;
  reason: string;
}

/** Most threads tfjs's threaded build can use (it starts a pool of 8 workers). */
export const MAX_WASM_THREADS = 8;

const isNode = typeof process !== 'undefined' && process.versions?.node != null;

/** How long the threaded build may take to start its workers before we fall back to one thread. */
const START_TIMEOUT_MS = 30_000;

type WasmModule = typeof import('@tensorflow/tfjs-backend-wasm');

interface Plan {
  threads: number;
  reason: string;
}

/**
 * The thread count wanted in Node: `T2MD_WASM_THREADS` (1..8) when set, else the cores this process
 * may run on (os.availableParallelism), at most 8.
 */
async function nodePlan(): Promise<Plan> {
  const raw = process.env.T2MD_WASM_THREADS;
  if (raw != null && raw !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > MAX_WASM_THREADS) {
      throw new InputError(`T2MD_WASM_THREADS must be an integer in 1..${MAX_WASM_THREADS}, got '${raw}'.`);
    }
    return { threads: n, reason: `T2MD_WASM_THREADS=${n}` };
  }
  const os = await nodeOs();
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return { threads: Math.max(1, Math.min(MAX_WASM_THREADS, cores)), reason: `${cores} core${cores === 1 ? '' : 's'} available` };
}

/** A variable module name, so browser bundlers leave Node's built-ins alone. */
function nodeName(name: string): string {
  return `node:${name}`;
}

/** Node's `os` as the object `require('os')` returns (what Emscripten reads), not the frozen ES namespace. */
async function nodeOs(): Promise<typeof import('node:os')> {
  const ns = (await import(/* @vite-ignore */ nodeName('os'))) as { default?: typeof import('node:os') } & typeof import('node:os');
  return ns.default ?? ns;
}

let info: WasmBuildInfo | undefined;
let installed: Promise<void> | undefined;

/**
 * Node: replaces tfjs's factory of the (not yet started) wasm backend by one that loads the threaded
 * SIMD build with `threads` XNNPACK threads; if that build fails to start, the backend falls back to
 * tfjs's own factory (single-threaded SIMD) and `wasmBuild()` says why.
 */
async function installNodeThreaded(mod: WasmModule, plan: Plan): Promise<void> {
  const { createRequire } = (await import(/* @vite-ignore */ nodeName('module'))) as typeof import('node:module');
  const os = await nodeOs();
  const { dirname, join } = (await import(/* @vite-ignore */ nodeName('path'))) as typeof import('node:path');
  const require = createRequire(import.meta.url);
  const gluePath = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as {
    wasmWorkerContents: string;
  };
  const factory = require(gluePath) as (config: Record<string, unknown>) => Promise<EmscriptenModule>;
  const original = tf.findBackendFactory('wasm');
  if (original == null) throw new Error('the wasm backend module registered no factory');
  // The worker script is tfjs's, run as an ES module from a data: URL with the CommonJS globals it
  // reads. It is one line whose string literals had their \n escapes turned into newlines by the
  // template literal that carries it: put them back (tfjs does the same before making its blob).
  const workerCode =
    `import { createRequire } from 'node:module';\nconst require = createRequire(${JSON.stringify(gluePath)});\n` +
    `const __filename = ${JSON.stringify(gluePath)};\n${wasmWorkerContents.replace(/\n/g, '\\n')}`;
  const workerUrl = new URL(`data:text/javascript,${encodeURIComponent(workerCode)}`);
  const locateFile = (path: string) => (path.endsWith('.worker.js') ? workerUrl : join(dirname(gluePath), path));
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      try {
        const module = await startThreaded(factory, os, plan.threads, locateFile);
        mod.setThreadsCount(plan.threads);
        const backend = new mod.BackendWasm(module as never); // starts XNNPACK's pool threads
        // Emscripten refs a worker while it runs a pthread, and the pool's threads run for good:
        // without this the process would never exit on its own
        for (const w of [...(module.PThread?.runningWorkers ?? []), ...(module.PThread?.unusedWorkers ?? [])]) w.unref?.();
        info = { build: 'threaded-simd', threads: mod.getThreadsCount(), reason: `${plan.reason} (Node has SharedArrayBuffer)` };
        return backend;
      } catch (err) {
        info = { build: 'simd', threads: 1, reason: `the threaded build failed to start (${(err as Error).message})` };
        return original();
      }
    },
    2,
  );
}

interface EmscriptenModule {
  cwrap: (name: string, ret: string | null, args: string[]) => unknown;
  PThread?: { unusedWorkers: { unref?: () => void }[]; runningWorkers: { unref?: () => void }[] };
  tfjs?: unknown;
}

async function startThreaded(
  factory: (config: Record<string, unknown>) => Promise<EmscriptenModule>,
  os: typeof import('node:os'),
  threads: number,
  locateFile: (path: string) => string | URL,
): Promise<EmscriptenModule> {
  // tfjs's C++ caps its pool at half of emscripten_num_logical_cores() (it assumes two hyperthreads
  // per core), which Emscripten reads from os.cpus() once, while the module starts: report 2·threads
  // logical cores for that moment so the cap is the thread count asked for.
  const cpus = os.cpus;
  const mutable = os as { cpus: typeof os.cpus };
  mutable.cpus = () => {
    const one = cpus()[0] ?? { model: 'cpu', speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } };
    return Array.from({ length: 2 * threads }, () => one);
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // the heap, made here (as Emscripten would: 16 MiB growing to 4 GiB, shared) so that it is
    // reachable as the module's `wasmMemory`: kernels of ours import it (HostOps.heapMemory)
    const wasmMemory = new WebAssembly.Memory({ initial: 256, maximum: 65536, shared: true });
    const module = await Promise.race([
      factory({ locateFile, wasmMemory }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`its workers did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      }),
    ]);
    // the names tfjs's BackendWasm calls (the same table tfjs's own loader builds)
    module.tfjs = {
      init: module.cwrap('init', null, []),
      initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
      getThreadsCount: module.cwrap('get_threads_count', 'number', []),
      registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
      disposeData: module.cwrap('dispose_data', null, ['number']),
      dispose: module.cwrap('dispose', null, []),
    };
    return module;
  } finally {
    mutable.cpus = cpus;
    clearTimeout(timer);
  }
}

/**
 * Prepares the wasm backend before its first start: in Node, the threaded SIMD build on as many
 * threads as there are cores (`T2MD_WASM_THREADS` sets the count; 1 keeps tfjs's single-threaded SIMD
 * build). A no-op once the backend has started, and in browsers (tfjs chooses there).
 */
export async function prepareWasm(mod: WasmModule): Promise<void> {
  if (backendStarted('wasm')) return;
  installed ??= (async () => {
    if (!isNode) return;
    const plan = await nodePlan();
    if (plan.threads <= 1) {
      info = { build: 'simd', threads: 1, reason: `${plan.reason}: one thread needs no workers` };
      return;
    }
    await installNodeThreaded(mod, plan);
  })();
  await installed;
}

/** After the wasm backend started: what runs (also in browsers, from tfjs's own choice). */
export async function describeWasm(mod: WasmModule): Promise<WasmBuildInfo> {
  if (info != null) return { ...info };
  const [simd, threads] = await Promise.all([
    tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
  ]);
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const build = simd && threads ? 'threaded-simd' : simd ? 'simd' : 'plain';
  const reason =
    build === 'threaded-simd'
      ? 'the page is cross-origin isolated (SharedArrayBuffer available)'
      : isolated
        ? 'this browser offers no WebAssembly threads'
        : 'the page is not cross-origin isolated (no COOP/COEP headers), so SharedArrayBuffer and threads are unavailable';
  info = { build, threads: mod.getThreadsCount(), reason };
  return { ...info };
}

/** The wasm build `initBackend` started, or undefined before the wasm backend ran. */
export function wasmBuild(): WasmBuildInfo | undefined {
  return info && { ...info };
}

/** WebAssembly's 32-bit address space: the most memory tfjs's wasm backend can ever hold. */
export const WASM_MAX_MEMORY = 2 ** 32;

/**
 * Bytes of linear memory the wasm backend holds now (it only grows), or null when it has not started.
 * A run that needs more than `WASM_MAX_MEMORY` does not get an out-of-memory error: XNNPACK and tfjs
 * use the failed allocation anyway and trap with a RuntimeError such as "table index is out of bounds",
 * so a caller that catches one compares this with the limit to say which it was.
 */
export function wasmMemoryBytes(): number | null {
  if (!backendStarted('wasm')) return null;
  const b = tf.findBackend('wasm') as { wasm?: { wasmMemory?: { buffer?: ArrayBufferLike }; HEAPU8?: Uint8Array } } | null;
  return b?.wasm?.wasmMemory?.buffer?.byteLength ?? b?.wasm?.HEAPU8?.byteLength ?? null;
}
