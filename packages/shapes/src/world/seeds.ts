import { Rng } from '@t2md/core';

/** splitmix32 step: a well-mixed uint32 from any uint32. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * The generator of item `index` of stream `stream` under `seed`: a full 128-bit xoshiro state hashed
 * from (seed, index, stream). Counter-based, so item i is the same whatever came before it; a
 * dataset's position is just an index, and resuming needs nothing else.
 */
export function indexedRng(seed: number, index: number, stream = 0): Rng {
  const words = [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0, index >>> 0, Math.floor(index / 2 ** 32) >>> 0, stream >>> 0];
  const s: [number, number, number, number] = [0, 0, 0, 0];
  for (let k = 0; k < 4; k++) {
    let h = mix32(0x243f6a88 + k * 0x1000193);
    for (const w of words) h = mix32(h ^ w);
    s[k] = h;
  }
  return new Rng({ s, spare: null });
}
