/**
 * A tiny WebAssembly encoder: enough of the binary format (https://webassembly.github.io/spec/core/binary/)
 * to assemble a module of a few functions that imports one memory and exports its functions, with the
 * i32, f32 and 128-bit SIMD instructions the scan kernels use. Bytes are built in JavaScript when first
 * needed, so there is no wasm toolchain and no binary file in the repository.
 */

export const I32 = 0x7f;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof V128;

function uleb(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

function sleb(v: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const name = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

/** One instruction's bytes. */
export type Instr = readonly number[];

const simd = (code: number, ...imm: number[]): Instr => [0xfd, ...uleb(code), ...imm];

/** The instructions the kernels use (names as in the text format, `.` and `_` dropped). */
export const op = {
  get: (local: number): Instr => [0x20, ...uleb(local)],
  set: (local: number): Instr => [0x21, ...uleb(local)],
  tee: (local: number): Instr => [0x22, ...uleb(local)],
  i32: (value: number): Instr => [0x41, ...sleb(value)], // i32.const
  add: [0x6a] as Instr, // i32.add
  sub: [0x6b] as Instr, // i32.sub
  ltU: [0x49] as Instr, // i32.lt_u
  /** `loop` with no result: a `brIf(0)` inside it jumps back to its start. */
  loop: [0x03, 0x40] as Instr,
  end: [0x0b] as Instr,
  brIf: (depth: number): Instr => [0x0d, ...uleb(depth)],
  /** f32.load at the address + `offset` bytes (alignment hint 4 bytes). */
  f32Load: (offset = 0): Instr => [0x2a, 2, ...uleb(offset)],
  /** v128.load at the address + `offset` bytes (alignment hint 16 bytes; any address works). */
  v128Load: (offset = 0): Instr => simd(0x00, 4, ...uleb(offset)),
  /** v128.store of the top value at the address below it + `offset` bytes. */
  v128Store: (offset = 0): Instr => simd(0x0b, 4, ...uleb(offset)),
  v128Zero: simd(0x0c, ...new Array<number>(16).fill(0)), // v128.const 0
  f32x4Splat: simd(0x13),
  f32x4Add: simd(0xe4),
  f32x4Mul: simd(0xe6),
} as const;

/** A function body: instructions appended in order, a line of them per `emit`. */
export class Code {
  readonly bytes: number[] = [];

  emit(...instrs: Instr[]): void {
    for (const i of instrs) this.bytes.push(...i);
  }
}

export interface WasmFunction {
  name: string;
  params: ValType[];
  locals: ValType[];
  code: Code;
}

/**
 * The bytes of a module that imports `env.memory` and exports `funcs` (no results). A shared memory
 * (the threaded wasm build's heap) must be imported as shared with a maximum: 65536 pages, 4 GiB,
 * accepts any.
 */
export function encodeModule(funcs: readonly WasmFunction[], sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const types = funcs.map((f) => [0x60, ...vec(f.params.map((t) => [t])), 0]);
  const limits = sharedMemory ? [0x03, 1, ...uleb(65536)] : [0x00, 1];
  const imports = [[...name('env'), ...name('memory'), 0x02, ...limits]];
  const bodies = funcs.map((f) => {
    const body = [...vec(f.locals.map((t) => [1, t])), ...f.code.bytes, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
    ...section(1, vec(types)),
    ...section(2, vec(imports)),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(7, vec(funcs.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(bodies)),
  ]);
}
