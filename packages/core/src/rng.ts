import * as tf from '@tensorflow/tfjs-core';
import { assertInt, check } from './assert.js';

/** The whole state of an Rng: four uint32 words of xoshiro128** plus a cached Box-Muller spare. */
export interface RngState {
  s: [number, number, number, number];
  spare: number | null;
}

/** splitmix32: spreads a 32-bit seed over the four state words (xoshiro must not start all-zero). */
function splitmix32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x9e3779b9) >>> 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * A seeded random number generator whose numbers are made in JavaScript and uploaded, so the same seed
 * gives bit-identical tensors on cpu, wasm and webgpu (tfjs's own random ops differ per backend).
 * Its state can be saved and restored exactly (checkpoints resume the same stream).
 */
export class Rng {
  private s: Uint32Array;
  private spare: number | null = null;

  constructor(seed: number | RngState = 0) {
    this.s = new Uint32Array(4);
    if (typeof seed === 'number') {
      assertInt('seed', seed, 0, 2 ** 53 - 1);
      const next = splitmix32((seed >>> 0) ^ Math.floor(seed / 2 ** 32));
      for (let i = 0; i < 4; i++) this.s[i] = next();
    } else {
      check(Array.isArray(seed?.s) && seed.s.length === 4, 'Rng state must be {s: [4 uint32], spare}.');
      this.s.set(seed.s.map((v) => v >>> 0));
      this.spare = seed.spare ?? null;
    }
    if (this.s.every((v) => v === 0)) this.s[0] = 1;
  }

  /** A copy of the state, JSON-serialisable. */
  get state(): RngState {
    return { s: [this.s[0], this.s[1], this.s[2], this.s[3]], spare: this.spare };
  }

  /** Next uint32 (xoshiro128**). */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 24 random bits (exact in float32). */
  next(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    assertInt('n', n, 1, 2 ** 32);
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare != null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const u1 = 1 - this.next(); // (0, 1]: log never sees 0
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** n standard normals. */
  normals(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal();
    return out;
  }

  /** n uniforms in [lo, hi). */
  uniforms(n: number, lo = 0, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.next();
    return out;
  }

  /** A float32 tensor of standard normals. */
  randn(shape: number[]): tf.Tensor {
    return tf.tensor(this.normals(numel(shape)), shape, 'float32');
  }

  /** A float32 tensor of uniforms in [lo, hi). */
  rand(shape: number[], lo = 0, hi = 1): tf.Tensor {
    return tf.tensor(this.uniforms(numel(shape), lo, hi), shape, 'float32');
  }

  /** An independent generator derived from this one (advances this one by four draws). */
  fork(): Rng {
    const r = new Rng(0);
    r.s.set([this.nextU32(), this.nextU32(), this.nextU32(), this.nextU32()]);
    if (r.s.every((v) => v === 0)) r.s[0] = 1;
    return r;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function numel(shape: number[]): number {
  let n = 1;
  for (const d of shape) {
    assertInt('shape entry', d, 0);
    n *= d;
  }
  return n;
}
