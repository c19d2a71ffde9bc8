import { InputError } from '@t2md/core';

/** A block's token mixer: self-attention, or bidirectional Mamba-2 over the height-first / width-first order. */
export type MixerKind = 'SA' | 'HM' | 'WM';

export const MIXER_KINDS: readonly MixerKind[] = ['SA', 'HM', 'WM'];

/** More blocks than this is a typo (`SA*2800`), not a model. */
const MAX_DEPTH = 1024;

/**
 * Parses a block layout such as `'SA*28'` or `'SA-(HM-WM)x3-SA-(HM-WM)x3'` into one mixer kind per block.
 *
 * Grammar (whitespace ignored):
 * ```
 * layout := item ('-' item)*
 * item   := atom (('x' | '*') count)*
 * atom   := 'SA' | 'HM' | 'WM' | '(' layout ')'
 * ```
 * so `'(HM-WM)x3'` is `HM-WM-HM-WM-HM-WM` and `'SA*4'` is four SA blocks; groups nest.
 * A malformed layout throws one InputError naming the position (counting from 1).
 */
export function parseLayout(layout: string): MixerKind[] {
  if (typeof layout !== 'string') {
    throw new InputError(`layout must be a string such as 'SA*28' or 'SA-(HM-WM)x3', got ${typeof layout}.`);
  }
  const p = new Parser(layout);
  const kinds = p.sequence();
  p.skipSpace();
  if (!p.done()) p.fail("expected '-' or the end");
  return kinds;
}

/** Writes kinds back as a plain layout string (`'SA-HM-WM'`); `parseLayout(formatLayout(k))` is `k`. */
export function formatLayout(kinds: readonly MixerKind[]): string {
  return kinds.join('-');
}

class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  done(): boolean {
    return this.pos >= this.src.length;
  }

  skipSpace(): void {
    while (!this.done() && /\s/.test(this.src[this.pos])) this.pos++;
  }

  fail(expected: string): never {
    const at = this.done() ? 'the end' : `'${this.src.slice(this.pos, this.pos + 8)}'`;
    throw new InputError(
      `layout '${this.src}' is malformed at position ${this.pos + 1} (${at}): ${expected}; write blocks as SA, HM or WM joined by '-', repeating with 'xN', '*N' or '(...)xN', e.g. 'SA-(HM-WM)x3'.`,
    );
  }

  sequence(): MixerKind[] {
    const out = this.item();
    for (;;) {
      this.skipSpace();
      if (this.src[this.pos] !== '-') return out;
      this.pos++;
      append(out, this.item(), this);
    }
  }

  private item(): MixerKind[] {
    let kinds = this.atom();
    for (;;) {
      this.skipSpace();
      const c = this.src[this.pos];
      if (c !== 'x' && c !== 'X' && c !== '*') return kinds;
      this.pos++;
      this.skipSpace();
      const start = this.pos;
      while (!this.done() && /[0-9]/.test(this.src[this.pos])) this.pos++;
      if (this.pos === start) this.fail(`expected a repeat count after '${c}'`);
      const n = Number(this.src.slice(start, this.pos));
      if (n < 1) {
        this.pos = start;
        this.fail('a repeat count must be at least 1');
      }
      if (kinds.length * n > MAX_DEPTH) {
        this.pos = start;
        this.fail(`the layout would have ${kinds.length * n} blocks, more than ${MAX_DEPTH}`);
      }
      const once = kinds;
      kinds = [];
      for (let i = 0; i < n; i++) kinds.push(...once);
    }
  }

  private atom(): MixerKind[] {
    this.skipSpace();
    if (this.src[this.pos] === '(') {
      this.pos++;
      const inner = this.sequence();
      this.skipSpace();
      if (this.src[this.pos] !== ')') this.fail("expected ')' to close the group");
      this.pos++;
      return inner;
    }
    const word = this.src.slice(this.pos, this.pos + 2).toUpperCase();
    if (word === 'SA' || word === 'HM' || word === 'WM') {
      this.pos += 2;
      return [word];
    }
    return this.fail("expected SA, HM, WM or '('");
  }
}

function append(out: MixerKind[], more: MixerKind[], p: Parser): void {
  if (out.length + more.length > MAX_DEPTH) p.fail(`the layout would have more than ${MAX_DEPTH} blocks`);
  out.push(...more);
}
