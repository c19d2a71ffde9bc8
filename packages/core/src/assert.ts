import type { Tensor } from '@tensorflow/tfjs-core';
import { InputError } from './errors.js';

/** Formats a shape as `[2, 3, 4]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Throws an InputError naming `name` unless `cond` holds. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new InputError(typeof message === 'string' ? message : message());
}

/** Checks that `t` is a float32 tensor, naming the argument in the error. */
export function assertFloat(name: string, t: Tensor): void {
  check(t != null && typeof t === 'object' && Array.isArray(t.shape), `${name} must be a tensor, got ${typeof t}.`);
  check(t.dtype === 'float32', () => `${name} must be float32, got ${t.dtype}; cast it with tf.cast(${name}, 'float32').`);
}

/** Checks the rank of `t`; `dims` names the axes for the message (e.g. 'B L H P'). */
export function assertRank(name: string, t: Tensor, rank: number, dims?: string): void {
  check(
    t.shape.length === rank,
    () => `${name} must have rank ${rank}${dims ? ` [${dims.split(' ').join(', ')}]` : ''}, got shape ${fmtShape(t.shape)}.`,
  );
}

/**
 * Checks `t.shape` against `expected`, where `null` entries match any size. The message names the
 * argument, the expected shape (with `dims` letters when given) and the actual one.
 */
export function assertShape(name: string, t: Tensor, expected: readonly (number | null)[], dims?: string): void {
  const ok = t.shape.length === expected.length && expected.every((e, i) => e == null || e === t.shape[i]);
  if (ok) return;
  const letters = dims?.split(' ');
  const want = expected.map((e, i) => (e == null ? (letters?.[i] ?? '?') : String(e)));
  throw new InputError(
    `${name} must have shape [${want.join(', ')}]${dims ? ` ([${letters?.join(', ')}])` : ''}, got ${fmtShape(t.shape)}.`,
  );
}

/** Checks that `value` is an integer in [min, max]. */
export function assertInt(
  name: string,
  value: unknown,
  min = Number.MIN_SAFE_INTEGER,
  max = Number.MAX_SAFE_INTEGER,
): asserts value is number {
  check(
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max,
    () => `${name} must be an integer in [${min}, ${max}], got ${String(value)}.`,
  );
}

/** Checks that `value` is one of `allowed`. */
export function assertOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): asserts value is T {
  check(
    typeof value === 'string' && (allowed as readonly string[]).includes(value),
    () => `${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(value)}.`,
  );
}
