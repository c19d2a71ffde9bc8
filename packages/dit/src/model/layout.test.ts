import { InputError } from '@t2md/core';
import { describe, expect, it } from 'vitest';
import { formatLayout, parseLayout } from './layout.js';

describe('parseLayout', () => {
  it('expands repeats and groups', () => {
    expect(parseLayout('SA*28')).toEqual(Array(28).fill('SA'));
    expect(parseLayout('SA-HM-WM')).toEqual(['SA', 'HM', 'WM']);
    expect(parseLayout('SAx3')).toEqual(['SA', 'SA', 'SA']);
    expect(parseLayout('(HM-WM)x2-SA')).toEqual(['HM', 'WM', 'HM', 'WM', 'SA']);
    expect(parseLayout(' SA - ( HM - WM ) x 2 ')).toEqual(['SA', 'HM', 'WM', 'HM', 'WM']);
    expect(parseLayout('((SA-HM)x2-WM)*2')).toEqual(['SA', 'HM', 'SA', 'HM', 'WM', 'SA', 'HM', 'SA', 'HM', 'WM']);
    expect(parseLayout('(SA*2)x2x3')).toHaveLength(12);
  });

  it("reads the paper's hybrid: SA at blocks 1, 8, 15, 22 (1-based), 24 Mamba", () => {
    const kinds = parseLayout('SA-(HM-WM)x3-SA-(HM-WM)x3-SA-(HM-WM)x3-SA-(HM-WM)x3');
    expect(kinds).toHaveLength(28);
    expect(kinds.flatMap((k, i) => (k === 'SA' ? [i + 1] : []))).toEqual([1, 8, 15, 22]);
    expect(kinds.slice(1, 7)).toEqual(['HM', 'WM', 'HM', 'WM', 'HM', 'WM']);
    expect(parseLayout(formatLayout(kinds))).toEqual(kinds);
  });

  it.each([
    ['', 1, "expected SA, HM, WM or '('"],
    ['SA-(HM-WM', 10, "expected ')'"],
    ['SA--HM', 4, "expected SA, HM, WM or '('"],
    ['SA-QQ', 4, "expected SA, HM, WM or '('"],
    ['SA*', 4, 'expected a repeat count'],
    ['SA*0', 4, 'at least 1'],
    ['SA-HM)', 6, "expected '-' or the end"],
    ['SA HM', 4, "expected '-' or the end"],
    ['SA*2000', 4, 'more than 1024'],
  ])('rejects %j at position %i', (layout, pos, what) => {
    let err: unknown;
    try {
      parseLayout(layout);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    const msg = (err as Error).message;
    expect(msg).toContain(`at position ${pos} `);
    expect(msg).toContain(what);
    expect(msg).toContain(`layout '${layout}'`);
  });

  it('rejects a non-string', () => {
    expect(() => parseLayout(28 as unknown as string)).toThrow(InputError);
  });
});
