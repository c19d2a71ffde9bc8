/**
 * The SSD scan's forward on the wasm backend as the plain recurrence of cpu.ts, one token at a time,
 * in a small hand-assembled WebAssembly SIMD module (wasm-encoder.ts) that works on the tensors in
 * place: it imports the backend's own heap memory, so x, B, C and y are read and written where tfjs
 * keeps them, with no copy. Per head, the state S `[N, P]` (transposed from the reference's [P, N] so
 * that 4 channels p make one f32x4) stays in cache while every token does
 *
 *   S ← dec_t S + B_t ⊗ (dt'_t x_t),   y_t = C_t S + D x_t          (dec_t = exp(dt'_t A_h))
 *
 * 4·P·N flops per token and head, the count the bench credits, where the chunked matrix form (host.ts)
 * does 1.6× as many on the shapes student's sequences. In Node the (sequence, head) pairs are split
 * with a second thread (simd-scan-thread.ts). On the 2-core CPU of bench/README the shapes student's
 * scan (64 sequences of 256 tokens, 8 heads, P 32, N 64) took 41–57 ms on one thread and 32–48 on
 * two, where the chunked form took 97 ms on XNNPACK's two threads; in `t2md bench sample` the
 * student's guided call spends 210–250 ms in the scan instead of 590–820. Each value is rounded to
 * float32 (dt' and dec in float64 first, as the chunked form takes them); the plain loops of cpu.ts
 * stay the reference.
 *
 * It runs when P is a multiple of 4 and the heap's WebAssembly.Memory is reachable: tfjs's SIMD build
 * exports it; our Node loader of the threaded build makes it (wasm-threads.ts). A threaded build that
 * tfjs loads itself (a cross-origin-isolated page) hides it: there the chunked form runs.
 */
import { HostOps } from '@t2md/core';
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs-core';
import { type PairsJob, runAllPairs, secondThreadReady } from './simd-scan-thread.js';
import { dimsOf, type SsdAttrs } from './types.js';
import { Code, encodeModule, I32, type Instr, op, V128 } from './wasm-encoder.js';

type ScanFn = (...args: number[]) => void;

let enabled = true;

/** Tests: turn the SIMD scan off (true again restores it) to run the chunked form it replaces on wasm. */
export function setWasmSimdScan(on: boolean): void {
  enabled = on;
}

/**
 * Threads the SIMD scan runs on here: 0 where it cannot run (not wasm, or the heap's memory hidden),
 * 1, or 2 once the second thread (Node, shared heap: simd-scan-thread.ts) has started, which the first
 * call of a process does.
 */
export function wasmSimdScanThreads(backend: KernelBackend): 0 | 1 | 2 {
  const memory = new HostOps(backend).heapMemory();
  if (memory == null) return 0;
  return secondThreadReady(memory) ? 2 : 1;
}

/**
 * `scan(x, y, B, C, dec, dtp, D, S, q, rowBytes, N, xStride, bStride, hStride)`: q tokens of one head,
 * every argument a byte address or byte stride of the heap except q and N. x and y step by xStride a
 * token, B and C (the head's group) by bStride, dec and dtp (its dec_t, dt'_t) by hStride; D is the
 * head's [P] (zeros for none); S its state [N, P], rowBytes = 4·P, read and left updated.
 * A block of `vectors` f32x4 (4·vectors channels) goes through the N rows at once, its dt'·x and C·S
 * held in locals: P must be a multiple of 4·vectors.
 */
function scanCode(vectors: number): { params: number; locals: (typeof I32 | typeof V128)[]; code: Code } {
  const [x, y, B, C, dec, dtp, D, S, q, rowBytes, N, xStride, bStride, hStride] = Array.from({ length: 14 }, (_, i) => i);
  let next = 14;
  const local = () => next++;
  const [t, p0, n, xr, sr, bn, cn] = Array.from({ length: 7 }, local);
  const [decV, dtV, bV, cV, s] = Array.from({ length: 5 }, local);
  const xv = Array.from({ length: vectors }, local); // dt'·x of the block's channels
  const acc = Array.from({ length: vectors }, local); // C·S of the block's channels
  const { get, set, tee, i32, add, sub, ltU, loop, end, brIf, f32Load, v128Load, v128Store, v128Zero, f32x4Splat, f32x4Add, f32x4Mul } = op;
  const step = (ptr: number, by: Instr) => [get(ptr), by, add, set(ptr)];
  const c = new Code();
  c.emit(i32(0), set(t), loop); // tokens
  c.emit(get(dec), f32Load(), f32x4Splat, set(decV), get(dtp), f32Load(), f32x4Splat, set(dtV));
  c.emit(i32(0), set(p0), loop); // blocks of 4·vectors channels
  c.emit(get(x), get(p0), add, set(xr));
  for (let k = 0; k < vectors; k++) c.emit(get(xr), v128Load(16 * k), get(dtV), f32x4Mul, set(xv[k]!), v128Zero, set(acc[k]!));
  c.emit(get(S), get(p0), add, set(sr), get(B), set(bn), get(C), set(cn), get(N), set(n));
  c.emit(loop); // state rows n
  c.emit(get(bn), f32Load(), f32x4Splat, set(bV), get(cn), f32Load(), f32x4Splat, set(cV));
  for (let k = 0; k < vectors; k++) {
    // s = dec·S[n] + B[n]·(dt'x);  S[n] = s;  acc += C[n]·s
    c.emit(get(sr), get(sr), v128Load(16 * k), get(decV), f32x4Mul, get(bV), get(xv[k]!), f32x4Mul, f32x4Add, tee(s), v128Store(16 * k));
    c.emit(get(acc[k]!), get(cV), get(s), f32x4Mul, f32x4Add, set(acc[k]!));
  }
  c.emit(...step(sr, get(rowBytes)), ...step(bn, i32(4)), ...step(cn, i32(4)));
  c.emit(get(n), i32(1), sub, tee(n), brIf(0), end);
  for (let k = 0; k < vectors; k++) {
    // y = C·S + D·x
    c.emit(get(y), get(p0), add, get(acc[k]!), get(D), get(p0), add, v128Load(16 * k), get(xr), v128Load(16 * k), f32x4Mul, f32x4Add);
    c.emit(v128Store(16 * k));
  }
  c.emit(get(p0), i32(16 * vectors), add, tee(p0), get(rowBytes), ltU, brIf(0), end);
  c.emit(...step(x, get(xStride)), ...step(y, get(xStride)), ...step(B, get(bStride)), ...step(C, get(bStride)));
  c.emit(...step(dec, get(hStride)), ...step(dtp, get(hStride)));
  c.emit(get(t), i32(1), add, tee(t), get(q), ltU, brIf(0), end);
  return { params: 14, locals: [...new Array<typeof I32>(7).fill(I32), ...new Array<typeof V128>(5 + 2 * vectors).fill(V128)], code: c };
}

/** Vectors per channel block: all of P's channels up to 32 at once (on a 2-core CPU 41 ms for the student's scan against 58 at 16). */
function vectorsFor(P: number): number {
  return P % 32 === 0 ? 8 : P % 16 === 0 ? 4 : P % 8 === 0 ? 2 : 1;
}

/** The scan's channel blocks: one function per count of vectors, `scan1` … `scan8`. */
const VECTORS = [1, 2, 4, 8];

interface ScanModule {
  /** compiled, for the second thread to instantiate */
  module: WebAssembly.Module;
  /** its functions, instantiated on this thread */
  scans: Record<string, ScanFn>;
}

const instances = new WeakMap<WebAssembly.Memory, ScanModule>();

/** The scan module, instantiated once per heap memory. */
function scanModule(memory: WebAssembly.Memory): ScanModule {
  let m = instances.get(memory);
  if (m == null) {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const funcs = VECTORS.map((v) => {
      const { params, locals, code } = scanCode(v);
      return { name: `scan${v}`, params: new Array<typeof I32>(params).fill(I32), locals, code };
    });
    const module = new WebAssembly.Module(encodeModule(funcs, shared));
    const scans = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, ScanFn>;
    m = { module, scans };
    instances.set(memory, m);
  }
  return m;
}

/**
 * Forward of `T2mdSsdScan` on wasm as the SIMD recurrence: y `[B, L, H, P]`, and finalStates
 * `[B, H, P, N]` when `a.returnFinal`; undefined when it cannot run here (not wasm, P not a multiple
 * of 4, the heap's memory hidden, or turned off), and the caller runs the chunked form.
 */
export function ssdForwardSimd(backend: KernelBackend, inputs: Record<string, TensorInfo>, a: SsdAttrs): TensorInfo[] | undefined {
  if (!enabled) return undefined;
  const ops = new HostOps(backend);
  const memory = ops.heapMemory();
  const d = dimsOf(inputs.x!.shape, inputs.B!.shape);
  const { batch: Bz, seqlen: L, nheads: H, headdim: P, ngroups: G, dstate: N } = d;
  if (memory == null || P % 4 !== 0 || L === 0 || N === 0) return undefined; // (the kernel's loops run at least once)
  const scan = scanModule(memory);
  try {
    // every tensor first: an allocation may grow the heap, after which views are rebuilt
    let y = ops.empty(inputs.x!.shape); // [B, L, H, P]
    const dec = ops.empty([Bz * L * H]);
    const dtp = ops.empty([Bz * L * H]);
    const Dh = ops.empty([H, P]);
    const [S, S2] = [ops.empty([N, P]), ops.empty([N, P])]; // state scratch of this thread and the second
    const fin = a.returnFinal ? ops.empty([Bz, H, P, N]) : undefined;
    const at = (t: TensorInfo) => ops.values(t).byteOffset;
    const heap = new Float32Array(memory.buffer);
    const f = (t: TensorInfo) => at(t) / 4;
    {
      const Din = a.hasD ? ops.values(inputs.D!) : undefined;
      const dh = f(Dh);
      for (let i = 0; i < H * P; i++) heap[dh + i] = Din == null ? 0 : a.dPerChannel ? Din[i]! : Din[Math.floor(i / P)]!;
    }
    const job: PairsJob = {
      ...{ dt: f(inputs.dt!), A: f(inputs.A!), bias: a.hasBias ? f(inputs.dtBias!) : -1 },
      ...{ dtSoftplus: a.dtSoftplus ? 1 : 0, dtClamp: a.dtClamp ? 1 : 0, dtMin: a.dtMin, dtMax: a.dtMax },
      ...{ x: f(inputs.x!), y: f(y), B: f(inputs.B!), C: f(inputs.C!), dec: f(dec), dtp: f(dtp), D: f(Dh) },
      ...{ init: a.hasInit ? f(inputs.initialStates!) : -1, fin: fin ? f(fin) : -1, L, H, P, G, N, vectors: vectorsFor(P) },
    };
    runAllPairs(memory, scan.module, scan.scans, job, f(S), f(S2), Bz * H);
    if (a.hasZ) {
      const z = inputs.z!;
      y = ops.call('Multiply', { a: y, b: ops.call('Multiply', { a: z, b: ops.call('Sigmoid', { x: z }) }) }); // y·silu(z)
    }
    return fin ? [ops.keep(y), ops.keep(fin)] : [ops.keep(y)];
  } finally {
    ops.dispose();
  }
}
