import { InputError, Rng } from '@t2md/core';
import { describe, expect, it } from 'vitest';
import { boxGap, crossStrength, relationStrength, shapeBox } from './geometry.js';
import { formatCaption, parseCaption, validatePrompt } from './grammar.js';
import { CATEGORIES, COLORS, RELATIONS, SHAPES, SIZE_RANGES, SIZES } from './palette.js';
import { CROSS_LIMIT, EDGE_MARGIN, MIN_GAP, RELATION_MARGIN, type Scene, sampleScene } from './scene.js';

const N = 3000;
const scenes: Scene[] = (() => {
  const rng = new Rng(20240611);
  return Array.from({ length: N }, () => sampleScene(rng));
})();

describe('caption grammar', () => {
  it('covers every category, shape, colour, count, relation and size word', () => {
    const words = new Set(scenes.flatMap((s) => s.caption.split(' ')));
    for (const w of [
      ...SHAPES,
      ...COLORS,
      ...SIZES,
      'circles',
      'squares',
      'triangles',
      'a',
      'an',
      'one',
      'two',
      'three',
      'four',
      'and',
      'left',
      'right',
      'of',
      'above',
      'below',
    ]) {
      expect(words.has(w), w).toBe(true);
    }
    const cats = new Map(CATEGORIES.map((c) => [c, 0]));
    for (const s of scenes) cats.set(s.category, (cats.get(s.category) ?? 0) + 1);
    // Uniform over six categories: each near N / 6 = 500.
    for (const [c, k] of cats) expect(k, c).toBeGreaterThan(400);
    const rels = new Set(scenes.map((s) => s.prompt.relation).filter((r) => r != null));
    expect([...rels].sort()).toEqual([...RELATIONS].sort());
  });

  it('parses every generated caption back to its prompt, and prints it back', () => {
    for (const s of scenes) {
      const parsed = parseCaption(s.caption);
      expect(parsed, s.caption).toEqual(s.prompt);
      expect(validatePrompt(parsed)).toBe(parsed);
      if (!s.caption.startsWith('one ')) expect(formatCaption(parsed)).toBe(s.caption);
    }
    expect(parseCaption('Two RED circles, left of a small blue square!')).toEqual({
      category: 'position',
      phrases: [
        { count: 2, shape: 'circle', color: 'red' },
        { count: 1, shape: 'square', color: 'blue', size: 'small' },
      ],
      relation: 'left of',
    });
    expect(parseCaption('one circle').category).toBe('singleObject');
    expect(parseCaption('a white triangle').category).toBe('colors');
    expect(parseCaption('four squares').category).toBe('counting');
    expect(parseCaption('a circle and a square').category).toBe('twoObjects');
    expect(parseCaption('a red circle and a square').category).toBe('colorAttribution');
  });

  it('makes scenes whose objects fit the caption: counts, colours, sizes, inside, apart, relations with margin', () => {
    for (const s of scenes) {
      const { phrases, relation } = s.prompt;
      expect(s.objects.length).toBe(phrases.reduce((a, p) => a + p.count, 0));
      let k = 0;
      for (const p of phrases) {
        for (let j = 0; j < p.count; j++, k++) {
          const o = s.objects[k];
          expect(o.shape).toBe(p.shape);
          if (p.color) expect(o.color).toBe(p.color);
          if (p.size) expect(o.size).toBe(p.size);
          const [lo, hi] = SIZE_RANGES[o.size];
          expect(o.r >= lo && o.r <= hi).toBe(true);
          const b = shapeBox(o.shape, o.cx, o.cy, o.r);
          expect(b.cx - b.hw).toBeGreaterThanOrEqual(EDGE_MARGIN - 1e-9);
          expect(b.cx + b.hw).toBeLessThanOrEqual(1 - EDGE_MARGIN + 1e-9);
          expect(b.cy - b.hh).toBeGreaterThanOrEqual(EDGE_MARGIN - 1e-9);
          expect(b.cy + b.hh).toBeLessThanOrEqual(1 - EDGE_MARGIN + 1e-9);
        }
      }
      const boxes = s.objects.map((o) => shapeBox(o.shape, o.cx, o.cy, o.r));
      for (let i = 0; i < boxes.length; i++)
        for (let j = i + 1; j < boxes.length; j++) expect(boxGap(boxes[i], boxes[j])).toBeGreaterThanOrEqual(MIN_GAP);
      if (relation) {
        expect(relationStrength(boxes[0], boxes[1], relation)).toBeGreaterThanOrEqual(RELATION_MARGIN);
        expect(crossStrength(boxes[0], boxes[1], relation)).toBeLessThanOrEqual(CROSS_LIMIT);
      }
      if (s.category === 'twoObjects' || s.category === 'colorAttribution') expect(phrases[0].shape).not.toBe(phrases[1].shape);
      if (s.category === 'colorAttribution') expect(phrases[0].color).not.toBe(phrases[1].color);
    }
  });

  it('is deterministic per seed and differs across seeds', () => {
    const draw = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 50 }, () => sampleScene(rng));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7).map((s) => s.caption)).not.toEqual(draw(8).map((s) => s.caption));
    for (const c of CATEGORIES) expect(sampleScene(new Rng(3), c).category).toBe(c);
  });

  it('rejects captions outside the grammar with an InputError that says where', () => {
    expect(() => parseCaption('')).toThrow(InputError);
    expect(() => parseCaption('a red hexagon')).toThrow(/expected a shape \(circle, square, triangle\) at "hexagon"/);
    expect(() => parseCaption('two red circle')).toThrow(/expected a shape \(circles, squares, triangles\) at "circle"/);
    expect(() => parseCaption('five circles')).toThrow(/expected a count/);
    expect(() => parseCaption('a circle near a square')).toThrow(/expected 'and' or a relation .* at "near"/);
    expect(() => parseCaption('a circle and a square and a triangle')).toThrow(/unexpected "and a triangle"/);
    expect(() => sampleScene(new Rng(1), 'shapes' as never)).toThrow(/category must be one of singleObject/);
    expect(() => validatePrompt({ category: 'colors', phrases: [{ count: 5, shape: 'circle' }] })).toThrow(/count 5 is not in 1..4/);
    expect(() => validatePrompt({ category: 'colors', phrases: [{ count: 1, shape: 'circle' }] })).toThrow(/its category is singleObject/);
  });
});
