import * as tf from '@tensorflow/tfjs-core';

/**
 * safetensors IO (https://github.com/huggingface/safetensors format): 8-byte little-endian header length N,
 * N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {k: string}}`, then the
 * data. Every length and offset is checked against the file before anything is allocated from it.
 */

/** Storage dtypes read and written. Floats load as float32, integers as int32, BOOL as bool. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8' | 'BOOL';

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, U8: 1, BOOL: 1 };
// A header this large is not a tensor index: 100 MB holds millions of entries.
const MAX_HEADER = 100 * 1024 * 1024;

export interface SaveOptions {
  /** Storage dtype per tensor name (default F32 for float32, I32 for int32, BOOL for bool). */
  dtypes?: Record<string, SafetensorsDtype>;
  /** Storage dtype for every float32 tensor not named in `dtypes` (F32, F16 or BF16; default F32). */
  floatDtype?: 'F32' | 'F16' | 'BF16';
}

function fail(what: string): never {
  throw new Error(`Invalid safetensors file: ${what}.`);
}

/** Parses safetensors bytes into tensors (on the current backend) and string metadata. */
export function loadSafetensors(bytes: Uint8Array): { tensors: Record<string, tf.Tensor>; metadata: Record<string, string> } {
  if (!(bytes instanceof Uint8Array)) throw new Error('loadSafetensors expects a Uint8Array of the file contents.');
  if (bytes.length < 8) fail(`it is ${bytes.length} bytes long, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > bytes.length - 8) fail(`the header claims ${n} bytes but only ${bytes.length - 8} follow`);
  if (n > MAX_HEADER) fail(`the header length ${n} exceeds ${MAX_HEADER} bytes`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (err) {
    fail(`the header is not UTF-8 JSON (${(err as Error).message})`);
  }
  if (header == null || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`metadata value '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e == null || typeof e !== 'object') fail(`entry '${name}' is not an object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in BYTES)) {
      fail(`tensor '${name}' has unknown dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(BYTES).join(', ')})`);
    }
    const dtype = e.dtype as SafetensorsDtype;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor '${name}' has a malformed shape`);
    const shape = e.shape as number[];
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`tensor '${name}' has malformed data_offsets`);
    }
    const [begin, end] = off as [number, number];
    if (begin > end) fail(`tensor '${name}' has data_offsets [${begin}, ${end}] that run backwards`);
    if (end > dataLen) fail(`tensor '${name}' ends at byte ${end}, past the ${dataLen} data bytes in the file`);
    let numel = 1;
    for (const d of shape) numel *= d;
    if (numel * BYTES[dtype] !== end - begin) {
      fail(
        `tensor '${name}' of shape [${shape.join(', ')}] and dtype ${dtype} needs ${numel * BYTES[dtype]} bytes but its range holds ${end - begin}`,
      );
    }
    entries.push({ name, dtype, shape, begin, end });
  }
  // The data must be covered exactly once: no overlaps, and (as the format requires) no holes.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of sorted) {
    if (e.begin < pos) fail(`tensor '${e.name}' overlaps the previous tensor's bytes`);
    if (e.begin > pos) fail(`bytes ${pos}..${e.begin} of the data belong to no tensor`);
    pos = e.end;
  }
  if (pos !== dataLen) fail(`the last ${dataLen - pos} data bytes belong to no tensor`);

  const tensors: Record<string, tf.Tensor> = {};
  try {
    for (const e of entries) {
      const raw = bytes.subarray(dataStart + e.begin, dataStart + e.end);
      tensors[e.name] = decode(e.name, e.dtype, e.shape, raw);
    }
  } catch (err) {
    tf.dispose(Object.values(tensors));
    throw err;
  }
  return { tensors, metadata };
}

function decode(name: string, dtype: SafetensorsDtype, shape: number[], raw: Uint8Array): tf.Tensor {
  const n = raw.length / BYTES[dtype];
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return tf.tensor(out, shape, 'float32');
    }
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
      return tf.tensor(out, shape, 'float32');
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(2 * i, true) << 16;
      return tf.tensor(out, shape, 'float32');
    }
    case 'I32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return tf.tensor(out, shape, 'int32');
    }
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = dv.getBigInt64(8 * i, true);
        if (v > 2147483647n || v < -2147483648n) {
          throw new Error(`Invalid safetensors file: tensor '${name}' (I64) holds ${v}, outside the int32 range tfjs can represent.`);
        }
        out[i] = Number(v);
      }
      return tf.tensor(out, shape, 'int32');
    }
    case 'U8':
      return tf.tensor(Int32Array.from(raw), shape, 'int32');
    case 'BOOL': {
      for (let i = 0; i < n; i++) {
        if (raw[i] > 1) throw new Error(`Invalid safetensors file: tensor '${name}' (BOOL) holds byte ${raw[i]}, not 0 or 1.`);
      }
      return tf.tensor(Uint8Array.from(raw), shape, 'bool');
    }
  }
}

/** Serialises tensors (read with `await data()`, so any backend) and string metadata to safetensors bytes. */
export async function saveSafetensors(
  tensors: Record<string, tf.Tensor>,
  metadata: Record<string, string> = {},
  opts: SaveOptions = {},
): Promise<Uint8Array> {
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new Error(`saveSafetensors: metadata '${k}' must be a string, got ${typeof v}.`);
  }
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new Error("saveSafetensors: '__metadata__' is reserved and cannot name a tensor.");
    const t = tensors[name];
    if (t == null || t.isDisposed) throw new Error(`saveSafetensors: tensor '${name}' is missing or disposed.`);
    const dtype = opts.dtypes?.[name] ?? defaultDtype(t.dtype, opts.floatDtype);
    const bytes = encode(name, dtype, t.dtype, await t.data());
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned (readers may then map tensors without copying).
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

function defaultDtype(dtype: tf.DataType, floatDtype: SaveOptions['floatDtype']): SafetensorsDtype {
  if (dtype === 'float32') return floatDtype ?? 'F32';
  if (dtype === 'int32') return 'I32';
  if (dtype === 'bool') return 'BOOL';
  throw new Error(`saveSafetensors: dtype ${dtype} cannot be stored; cast to float32 or int32 first.`);
}

function encode(name: string, dtype: SafetensorsDtype, from: tf.DataType, values: ArrayLike<number> | unknown): Uint8Array {
  const v = values as ArrayLike<number>;
  const isFloat = from === 'float32';
  const okPair = isFloat ? ['F32', 'F16', 'BF16'].includes(dtype) : ['I32', 'I64', 'U8', 'BOOL'].includes(dtype);
  if (!okPair) throw new Error(`saveSafetensors: tensor '${name}' is ${from} and cannot be stored as ${dtype}.`);
  const n = v.length;
  const out = new Uint8Array(n * BYTES[dtype]);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const x = v[i];
    switch (dtype) {
      case 'F32':
        dv.setFloat32(4 * i, x, true);
        break;
      case 'F16':
        dv.setUint16(2 * i, floatToHalf(x), true);
        break;
      case 'BF16':
        dv.setUint16(2 * i, floatToBf16(x), true);
        break;
      case 'I32':
        dv.setInt32(4 * i, x, true);
        break;
      case 'I64':
        dv.setBigInt64(8 * i, BigInt(x), true);
        break;
      case 'U8':
      case 'BOOL':
        if (x < 0 || x > (dtype === 'BOOL' ? 1 : 255))
          throw new Error(`saveSafetensors: tensor '${name}' holds ${x}, which does not fit ${dtype}.`);
        out[i] = x;
        break;
    }
  }
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half → float. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** float → IEEE half, rounding to nearest even; overflow goes to ±inf. */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

/** float → bfloat16 (round to nearest even). */
export function floatToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}
