import { parseLayout } from '@t2md/dit';
import { InvalidArgumentError } from 'commander';

/** commander parser for an integer flag within [min, max]. */
export function intArg(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}], got '${value}'.`);
    }
    return n;
  };
}

/** commander parser for a finite number flag within [min, max]. */
export function numArg(name: string, min: number, max = Number.POSITIVE_INFINITY) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}], got '${value}'.`);
    }
    return n;
  };
}

/** commander parser for one of a fixed set of words. */
export function choiceArg(name: string, choices: readonly string[]) {
  return (value: string): string => {
    if (!choices.includes(value)) throw new InvalidArgumentError(`${name} must be one of ${choices.join(', ')}, got '${value}'.`);
    return value;
  };
}

export const BACKENDS = ['auto', 'webgpu', 'wasm', 'cpu'] as const;

/** commander parser for a finite number > 0 (a learning rate). */
export function posNumArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
      throw new InvalidArgumentError(`${name} must be a number > 0, got '${value}'.`);
    }
    return n;
  };
}

/** commander parser for a block layout such as 'SA-(HM-WM)x3' (checked with @t2md/dit's parser, whose message names the position). */
export function layoutArg() {
  return (value: string): string => {
    try {
      parseLayout(value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
    return value;
  };
}

/** commander parser for a file path that must end in `ext` (any case), e.g. `--out grid.png`. */
export function fileExtArg(name: string, ext: string, why: string) {
  return (value: string): string => {
    if (!value.toLowerCase().endsWith(ext)) {
      throw new InvalidArgumentError(`${name} must name a ${ext} file (${why}), got '${value}'.`);
    }
    return value;
  };
}
