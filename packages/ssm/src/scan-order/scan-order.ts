import { assertInt, assertOneOf, check } from '@t2md/core';

/**
 * The order in which a Mamba mixer visits a token grid `[H, W]` stored row-major (token index
 * `h * W + w`): `'WM'` is width-first (row-major, the identity), `'HM'` is height-first (column-major,
 * the transpose order). T2MD alternates the two so that every token sees its vertical and horizontal
 * neighbours as recent states (arXiv 2506.18999, Sec. 3).
 */
export type ScanOrder = 'WM' | 'HM';

export const SCAN_ORDERS: readonly ScanOrder[] = ['WM', 'HM'];

export interface ScanPermutationOptions {
  /** Visit the tokens in the opposite order (last token of the plain order first). */
  reverse?: boolean;
  /**
   * Boustrophedon: every other line runs backwards (odd rows for `'WM'`, odd columns for `'HM'`), so
   * consecutive tokens of the scan are always grid neighbours. Applied before `reverse`.
   */
  snake?: boolean;
}

/** A scan order as an index permutation of the row-major grid and its inverse. */
export interface ScanPermutation {
  /** `perm[i]` = grid index (`h * W + w`) of the i-th scanned token. */
  perm: Int32Array;
  /** `inv[g]` = position in the scan of grid token `g`; `perm[inv[g]] === g`. */
  inv: Int32Array;
}

/**
 * The permutation that puts the tokens of a row-major `[H, W]` grid in scan order `order`.
 * Gather a `[B, L, D]` sequence with `perm` to scan it, and with `inv` to bring the result back.
 */
export function scanPermutation(order: ScanOrder, H: number, W: number, opts: ScanPermutationOptions = {}): ScanPermutation {
  assertOneOf('order', order, SCAN_ORDERS);
  assertInt('H', H, 1);
  assertInt('W', W, 1);
  check(H * W <= 2 ** 31 - 1, () => `H * W must fit in int32, got ${H} * ${W}.`);
  const L = H * W;
  const perm = new Int32Array(L);
  if (order === 'WM') {
    for (let h = 0; h < H; h++) {
      const flip = opts.snake === true && h % 2 === 1;
      for (let w = 0; w < W; w++) perm[h * W + w] = h * W + (flip ? W - 1 - w : w);
    }
  } else {
    for (let w = 0; w < W; w++) {
      const flip = opts.snake === true && w % 2 === 1;
      for (let h = 0; h < H; h++) perm[w * H + h] = (flip ? H - 1 - h : h) * W + w;
    }
  }
  if (opts.reverse === true) perm.reverse();
  return { perm, inv: invertPermutation(perm) };
}

/** The inverse of a permutation of `0..n-1`; throws an InputError when `perm` is not one. */
export function invertPermutation(perm: ArrayLike<number>): Int32Array {
  const n = perm.length;
  const inv = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const g = perm[i];
    check(Number.isInteger(g) && g >= 0 && g < n && inv[g] === -1, () => `perm must be a permutation of 0..${n - 1}, got ${g} at ${i}.`);
    inv[g] = i;
  }
  return inv;
}

/** The same scan run backwards: `reversePermutation(p)[i] = p[n - 1 - i]`, with its inverse. */
export function reversePermutation({ perm, inv }: ScanPermutation): ScanPermutation {
  const n = perm.length;
  const rp = new Int32Array(n);
  const ri = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    rp[i] = perm[n - 1 - i];
    ri[i] = n - 1 - inv[i];
  }
  return { perm: rp, inv: ri };
}
