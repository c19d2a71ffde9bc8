import { InputError } from '@t2md/core';
import { parseLayout } from '@t2md/dit';
import { CATEGORIES } from '@t2md/shapes';
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

/**
 * A comma-separated list of names from `choices` (`--tiles 4x4,8x8`), or every choice when `all` is
 * allowed and given; anything else is an InputError naming `flag`, `what` the names are, and the choices.
 */
export function parseChoiceList<T extends string>(flag: string, raw: string, what: string, choices: readonly T[], all = false): T[] {
  if (all && raw.trim() === 'all') return [...choices];
  const xs = raw.split(',').map((x) => x.trim());
  if (!xs.every((x) => (choices as readonly string[]).includes(x))) {
    throw new InputError(`${flag} takes ${what} separated by commas (${choices.join(', ')})${all ? ' or all' : ''}, got '${raw}'.`);
  }
  return [...new Set(xs)] as T[];
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

/**
 * commander parser for `--category-mix position=2,counting=2`: integer weights in [0, 100] of the shapes
 * world's categories in the training data (unnamed ones weigh 1). The keys come back in CATEGORIES'
 * order, so that the same mix written two ways is the same setting (a --resume compares them).
 */
export function categoryMixArg() {
  return (value: string): Record<string, number> => {
    const given: Record<string, number> = {};
    for (const part of value.split(',')) {
      const m = /^\s*(\w+)\s*=\s*(\d+)\s*$/.exec(part);
      if (m == null) {
        throw new InvalidArgumentError(
          `--category-mix takes category=weight pairs separated by commas, e.g. position=2,counting=2; got '${value}'.`,
        );
      }
      const [, name, w] = m;
      if (!(CATEGORIES as readonly string[]).includes(name)) {
        throw new InvalidArgumentError(`--category-mix names '${name}', which is not one of ${CATEGORIES.join(', ')}.`);
      }
      if (name in given) throw new InvalidArgumentError(`--category-mix names '${name}' twice; give each category once.`);
      const n = Number(w);
      if (n > 100) throw new InvalidArgumentError(`--category-mix weight of '${name}' must be an integer in [0, 100], got ${w}.`);
      given[name] = n;
    }
    if (CATEGORIES.every((c) => given[c] === 0)) {
      throw new InvalidArgumentError('--category-mix gives every category weight 0; give at least one a positive weight.');
    }
    return Object.fromEntries(CATEGORIES.filter((c) => c in given).map((c) => [c, given[c]]));
  };
}

/** One image side of `--resolution` and how often a step draws it (StageConfig's ResolutionChoice). */
export interface ResolutionArg {
  size: number;
  weight: number;
}

/**
 * commander parser for `--resolution 64` or `--resolution 32,64` or `--resolution 32:1,64:4`: the image
 * side(s) in pixels a stage trains at, each with a positive relative weight (default 1). One size comes
 * back as a number, several as weighted choices (a mixed-resolution stage draws one per step).
 */
export function resolutionArg() {
  return (value: string): number | ResolutionArg[] => {
    const choices: ResolutionArg[] = [];
    for (const part of value.split(',')) {
      const m = /^\s*(\d+)\s*(?::\s*(\d+(?:\.\d+)?)\s*)?$/.exec(part);
      if (m == null) {
        throw new InvalidArgumentError(
          `--resolution takes image sides in pixels separated by commas, each optionally with a weight, e.g. 64 or 32,64 or 32:1,64:4; got '${value}'.`,
        );
      }
      const size = Number(m[1]);
      const weight = m[2] == null ? 1 : Number(m[2]);
      if (size < 8 || size > 1024) throw new InvalidArgumentError(`--resolution sides must be integers in [8, 1024] pixels, got ${m[1]}.`);
      if (!(weight > 0)) throw new InvalidArgumentError(`--resolution weight of ${size} px must be > 0, got ${m[2]}.`);
      if (choices.some((c) => c.size === size)) throw new InvalidArgumentError(`--resolution names ${size} px twice; give each side once.`);
      choices.push({ size, weight });
    }
    return choices.length === 1 ? choices[0].size : choices;
  };
}
