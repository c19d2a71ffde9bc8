import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { floatToHalf, halfToFloat, loadSafetensors, saveSafetensors } from './safetensors.js';
import { tryBackend, withNoLeaks } from './testing/index.js';

/** Builds a file from a raw header object and data bytes (for malformed cases). */
function rawFile(header: unknown, data: Uint8Array, headerLen?: bigint): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

beforeAll(async () => {
  await tryBackend('cpu');
});

describe('safetensors', () => {
  it('round-trips every dtype with metadata', async () => {
    await withNoLeaks(async () => {
      const vals = [0, 1, -2.5, 65504, 1e-3, -0.333];
      const ints = [0, 1, -7, 2147483647, -2147483648];
      const src = {
        f32: tf.tensor(vals, [2, 3]),
        f16: tf.tensor(vals, [6]),
        bf16: tf.tensor(vals, [3, 2]),
        i32: tf.tensor(ints, [5], 'int32'),
        i64: tf.tensor(ints, [5], 'int32'),
        u8: tf.tensor([0, 5, 255], [3], 'int32'),
        bool: tf.tensor([1, 0, 1, 1], [2, 2], 'bool'),
        scalar: tf.scalar(3.5),
        empty: tf.zeros([0, 4]),
      };
      const bytes = await saveSafetensors(
        src,
        { config: '{"a":1}', note: 'héllo' },
        {
          dtypes: { f16: 'F16', bf16: 'BF16', i64: 'I64', u8: 'U8' },
        },
      );
      const { tensors, metadata } = loadSafetensors(bytes);
      expect(metadata).toEqual({ config: '{"a":1}', note: 'héllo' });
      expect(Object.keys(tensors).sort()).toEqual(Object.keys(src).sort());
      expect(Array.from(await tensors.f32.data())).toEqual(Array.from(await src.f32.data()));
      expect(tensors.f32.shape).toEqual([2, 3]);
      const f16 = Array.from(await tensors.f16.data());
      for (const [i, v] of vals.entries()) expect(f16[i]).toBeCloseTo(v, Math.abs(v) > 100 ? 0 : 3);
      const bf = Array.from(await tensors.bf16.data());
      for (const [i, v] of vals.entries()) expect(Math.abs(bf[i] - v)).toBeLessThanOrEqual(Math.abs(v) / 128 + 1e-30);
      expect(Array.from(await tensors.i32.data())).toEqual(ints);
      expect(Array.from(await tensors.i64.data())).toEqual(ints);
      expect(tensors.i64.dtype).toBe('int32');
      expect(Array.from(await tensors.u8.data())).toEqual([0, 5, 255]);
      expect(tensors.bool.dtype).toBe('bool');
      expect(Array.from(await tensors.bool.data())).toEqual([1, 0, 1, 1]);
      expect(tensors.scalar.shape).toEqual([]);
      expect(tensors.empty.shape).toEqual([0, 4]);
      // the data section starts 8-byte aligned
      expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0);
      tf.dispose([...Object.values(src), ...Object.values(tensors)]);
    });
  });

  it('converts half floats exactly at representable values and rounds to nearest even', () => {
    for (const v of [0, 1, -1, 0.5, 65504, 2 ** -24, 2 ** -14, 1.5, -1025, 0.0999755859375]) expect(halfToFloat(floatToHalf(v))).toBe(v);
    expect(halfToFloat(floatToHalf(70000))).toBe(Number.POSITIVE_INFINITY);
    expect(halfToFloat(floatToHalf(1 + 2 ** -11))).toBe(1); // tie goes to even
  });

  const f32 = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['a file shorter than 8 bytes', () => new Uint8Array(5), /shorter than the 8-byte header length/],
    ['a header longer than the file', () => rawFile({ a: f32 }, new Uint8Array(8), 1000n), /header claims 1000 bytes/],
    ['an absurd header length', () => rawFile({}, new Uint8Array(0), 2n ** 62n), /header claims/],
    [
      'a header that is not JSON',
      () => {
        const f = rawFile({ a: f32 }, new Uint8Array(8));
        f[9] = 0x7b;
        f[8] = 0x7b;
        return f;
      },
      /not UTF-8 JSON/,
    ],
    ['a truncated data section', () => rawFile({ a: f32 }, new Uint8Array(4)), /past the 4 data bytes/],
    ['offsets past the end', () => rawFile({ a: { ...f32, data_offsets: [8, 16] } }, new Uint8Array(8)), /past the 8 data bytes/],
    ['overlapping ranges', () => rawFile({ a: f32, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /overlaps/],
    ['an unknown dtype', () => rawFile({ a: { ...f32, dtype: 'F8' } }, new Uint8Array(8)), /unknown dtype "F8"/],
    ['a shape/size mismatch', () => rawFile({ a: { ...f32, shape: [3] } }, new Uint8Array(8)), /needs 12 bytes but its range holds 8/],
    ['a negative dimension', () => rawFile({ a: { ...f32, shape: [-2] } }, new Uint8Array(8)), /malformed shape/],
    ['backwards offsets', () => rawFile({ a: { ...f32, data_offsets: [8, 0] } }, new Uint8Array(8)), /run backwards/],
    [
      'a hole in the data',
      () => rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)),
      /belong to no tensor/,
    ],
    ['trailing bytes', () => rawFile({ a: f32 }, new Uint8Array(12)), /last 4 data bytes belong to no tensor/],
    ['non-string metadata', () => rawFile({ __metadata__: { a: 1 } }, new Uint8Array(0)), /metadata value 'a' is not a string/],
    [
      'I64 outside int32',
      () => {
        const d = new Uint8Array(8);
        new DataView(d.buffer).setBigInt64(0, 2n ** 40n, true);
        return rawFile({ a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, d);
      },
      /outside the int32 range/,
    ],
  ];
  it.each(cases)('rejects %s with a clear error at once', async (_, make, message) => {
    const before = tf.memory().numTensors;
    expect(() => loadSafetensors(make())).toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses to store a value that does not fit the chosen dtype', async () => {
    const t = tf.tensor([300], [1], 'int32');
    await expect(saveSafetensors({ t }, {}, { dtypes: { t: 'U8' } })).rejects.toThrow(/does not fit U8/);
    await expect(saveSafetensors({ t }, {}, { dtypes: { t: 'F16' } })).rejects.toThrow(/cannot be stored as F16/);
    t.dispose();
  });
});
