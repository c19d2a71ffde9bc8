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
