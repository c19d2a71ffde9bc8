/**
 * A second thread for the SIMD scan (simd-scan.ts) in Node, where the wasm heap is a shared memory
 * (tfjs's threaded build): one worker_threads worker instantiates the same module on the same memory
 * and takes the second half of the (sequence, head) pairs of each call while the calling thread runs
 * the first half, then the caller waits for it (Atomics.wait; a kernel is synchronous). Each pair is
 * computed by the same code on either thread, so results do not depend on who ran it. On a 2-core
 * CPU XNNPACK's own pool sleeps meanwhile (the scan is not one of its ops), and the shapes student's
 * scan runs in about half the time.
 *
 * The worker starts on the first call and helps once it has started (calls before run on one
 * thread); it is unref'd, so it never keeps the process alive. Browsers get no second thread: there
 * the threaded build's memory is tfjs's own and the chunked form runs (simd-scan.ts).
 */

import { dtValue } from './cpu.js';

/** Where one call's tensors are, as float indices of the heap, its sizes and dt's settings: `runPairs`' job. */
export interface PairsJob {
  /** the kernel's dt [B, L, H], A [H] and dtBias [H] (or −1) */
  dt: number;
  A: number;
  bias: number;
  /** SsdAttrs' dt settings, booleans as 0 or 1 */
  dtSoftplus: number;
  dtClamp: number;
  dtMin: number;
  dtMax: number;
  x: number;
  y: number;
  B: number;
  C: number;
  /** dec_t = exp(dt'_t A_h) and dt'_t per (token, head), [B, L, H], written here */
  dec: number;
  dtp: number;
  /** D as [H, P] */
  D: number;
  /** initialStates [B, H, P, N], or −1 */
  init: number;
  /** finalStates [B, H, P, N], or −1 */
  fin: number;
  L: number;
  H: number;
  P: number;
  G: number;
  N: number;
  /** which of the module's functions runs: `scan${vectors}` */
  vectors: number;
}

/** The job's fields in the order they travel to the worker (a Float64Array; indices are exact). */
const FIELDS = [
  ...['dt', 'A', 'bias', 'dtSoftplus', 'dtClamp', 'dtMin', 'dtMax'],
  ...['x', 'y', 'B', 'C', 'dec', 'dtp', 'D', 'init', 'fin', 'L', 'H', 'P', 'G', 'N', 'vectors'],
] as const satisfies readonly (keyof PairsJob)[];

type DtValue = (raw: number, bias: number, a: { dtSoftplus: boolean; dtClamp: boolean; dtMin: number; dtMax: number }) => number;

/**
 * Runs pairs `from..to-1` (pair = sequence·H + head) of a job with state scratch `S` ([N, P], a float
 * index): each pair's dt' (`dtValue`, cpu.ts) and decays, then its scan. Self-contained (no outside
 * names): the worker runs its source text.
 */
export function runPairs(
  scan: (...args: number[]) => void,
  dtValue: DtValue,
  heap: Float32Array,
  j: PairsJob,
  S: number,
  from: number,
  to: number,
): void {
  const { L, H, P, G, N } = j;
  const dtSet = { dtSoftplus: j.dtSoftplus === 1, dtClamp: j.dtClamp === 1, dtMin: j.dtMin, dtMax: j.dtMax };
  for (let pair = from; pair < to; pair++) {
    const b = Math.floor(pair / H);
    const h = pair % H;
    const [A, bias] = [heap[j.A + h]!, j.bias < 0 ? 0 : heap[j.bias + h]!];
    for (let i = b * L * H + h; i < (b + 1) * L * H; i += H) {
      const v = dtValue(heap[j.dt + i]!, bias, dtSet); // float64, rounded once as stored
      heap[j.dtp + i] = v;
      heap[j.dec + i] = Math.exp(v * A);
    }
    const st = pair * P * N; // of initialStates and finalStates [B, H, P, N]
    if (j.init < 0) heap.fill(0, S, S + N * P);
    else for (let p = 0; p < P; p++) for (let n = 0; n < N; n++) heap[S + n * P + p] = heap[j.init + st + p * N + n]!;
    const tok = b * L * H + h; // (token 0, head h)
    const grp = (b * L * G + Math.floor(h / (H / G))) * N; // (token 0, the head's group)
    const at = (f: number) => 4 * f; // float index → byte address
    scan(
      at(j.x + tok * P),
      at(j.y + tok * P),
      at(j.B + grp),
      at(j.C + grp),
      at(j.dec + tok),
      at(j.dtp + tok),
      at(j.D + h * P),
      at(S),
      L,
      4 * P,
      N,
      4 * H * P,
      4 * G * N,
      4 * H,
    );
    if (j.fin >= 0) for (let p = 0; p < P; p++) for (let n = 0; n < N; n++) heap[j.fin + st + p * N + n] = heap[S + n * P + p]!;
  }
}

// control words (Int32Array over a SharedArrayBuffer): the caller bumps GO and notifies, the worker
// runs and stores the same number into DONE (FAILED 1 if its half threw); READY once its module is
// instantiated
const [GO, DONE, READY, FAILED] = [0, 1, 2, 3];
const WORDS = 4;
/** How long the caller waits for the worker's half before giving up with an error. */
const TIMEOUT_MS = 60_000;

function workerSource(): string {
  return `
const { workerData } = require('node:worker_threads');
const { module, memory, control, job } = workerData;
const scans = new WebAssembly.Instance(module, { env: { memory } }).exports;
const runPairs = ${runPairs.toString()};
const dtValue = ${dtValue.toString()};
const c = new Int32Array(control);
const f = new Float64Array(job);
const fields = ${JSON.stringify(FIELDS)};
Atomics.store(c, ${READY}, 1);
for (let seen = 0; ; ) {
  Atomics.wait(c, ${GO}, seen);
  seen = Atomics.load(c, ${GO});
  const j = {};
  fields.forEach((k, i) => { j[k] = f[i]; });
  try {
    runPairs(scans['scan' + j.vectors], dtValue, new Float32Array(memory.buffer), j, f[fields.length], f[fields.length + 1], f[fields.length + 2]);
  } catch {
    Atomics.store(c, ${FAILED}, 1);
  }
  Atomics.store(c, ${DONE}, seen);
  Atomics.notify(c, ${DONE});
}`;
}

interface Helper {
  control: Int32Array;
  job: Float64Array;
  calls: number;
}

type WorkerThreads = typeof import('node:worker_threads');

const helpers = new WeakMap<WebAssembly.Memory, Helper | null>();

/** The worker of this memory once it is ready; starts it on the first ask (null: no second thread here). */
function helper(memory: WebAssembly.Memory, module: WebAssembly.Module): Helper | undefined {
  let h = helpers.get(memory);
  if (h === undefined) {
    h = startHelper(memory, module);
    helpers.set(memory, h);
  }
  return h != null && Atomics.load(h.control, READY) === 1 ? h : undefined;
}

function startHelper(memory: WebAssembly.Memory, module: WebAssembly.Module): Helper | null {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const wt = proc?.getBuiltinModule?.('node:worker_threads') as WorkerThreads | undefined;
  const os = proc?.getBuiltinModule?.('node:os') as typeof import('node:os') | undefined;
  const cores = os == null ? 1 : typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  if (wt == null || cores < 2 || !(memory.buffer instanceof SharedArrayBuffer)) return null;
  const control = new Int32Array(new SharedArrayBuffer(4 * WORDS));
  const job = new Float64Array(new SharedArrayBuffer(8 * (FIELDS.length + 3)));
  const worker = new wt.Worker(workerSource(), { eval: true, workerData: { module, memory, control: control.buffer, job: job.buffer } });
  worker.unref();
  worker.on('error', () => helpers.set(memory, null)); // later calls run on one thread
  return { control, job, calls: 0 };
}

/** Whether calls on this memory split their pairs with the second thread (it has started and is ready). */
export function secondThreadReady(memory: WebAssembly.Memory): boolean {
  const h = helpers.get(memory);
  return h != null && Atomics.load(h.control, READY) === 1;
}

/**
 * Runs every pair of the job: the second half on the worker when it is ready (its state scratch at
 * `S2`), the rest here with scratch `S`. `module` is the compiled scan module, `scans` its functions here.
 */
export function runAllPairs(
  memory: WebAssembly.Memory,
  module: WebAssembly.Module,
  scans: Record<string, (...args: number[]) => void>,
  job: PairsJob,
  S: number,
  S2: number,
  pairs: number,
): void {
  const scan = scans[`scan${job.vectors}`]!;
  const h = pairs > 1 ? helper(memory, module) : undefined;
  const half = h ? Math.ceil(pairs / 2) : pairs;
  if (h) {
    FIELDS.forEach((k, i) => {
      h.job[i] = job[k];
    });
    h.job.set([S2, half, pairs], FIELDS.length);
    const call = ++h.calls;
    Atomics.store(h.control, GO, call);
    Atomics.notify(h.control, GO);
    runPairs(scan, dtValue, new Float32Array(memory.buffer), job, S, 0, half);
    while (Atomics.load(h.control, DONE) !== call) {
      if (Atomics.wait(h.control, DONE, call - 1, TIMEOUT_MS) === 'timed-out') {
        helpers.set(memory, null);
        throw new Error(`the SSD scan's second thread did not finish within ${TIMEOUT_MS / 1000} s`);
      }
    }
    if (Atomics.exchange(h.control, FAILED, 0) === 1) throw new Error("the SSD scan's second thread failed on its half of the sequences");
    return;
  }
  runPairs(scan, dtValue, new Float32Array(memory.buffer), job, S, 0, half);
}
