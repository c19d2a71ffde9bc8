import { initBackend, Rng } from '@t2md/core';
import { withNoLeaks } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkImage, checkImageData, evalPrompts, evalScenes, evaluate, SUPPORTED_RESOLUTIONS } from './checker.js';
import { COLORS, SHAPES } from './palette.js';
import { imagesToTensor, renderScene } from './render.js';
import type { Scene, SceneObject } from './scene.js';

const N = 300;
const scenes = evalScenes(N, 2024);

/** Accuracy of the checker on renders of `list` at `res`, with the failures for the message. */
function accuracy(list: { scene: Scene; objects: SceneObject[] }[], res: number, wantCorrect: boolean) {
  const misses: string[] = [];
  for (const { scene, objects } of list) {
    const r = checkImageData(renderScene(objects, res), scene.caption);
    if (r.correct !== wantCorrect) misses.push(`${scene.caption}: ${r.details.reasons.join('; ') || 'judged correct'}`);
  }
  return { rate: 1 - misses.length / list.length, misses };
}

const other = <T>(xs: readonly T[], x: T, k = 1): T => xs[(xs.indexOf(x) + k) % xs.length];

describe('GenEval-style checker', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'cpu' });
  });

  it.each(SUPPORTED_RESOLUTIONS)('is at least 99 percent correct on %i px ground-truth renders (300 prompts, all categories)', (res) => {
    const t0 = performance.now();
    const { rate, misses } = accuracy(
      scenes.map((scene) => ({ scene, objects: scene.objects })),
      res,
      true,
    );
    console.log(
      `checker on ${N} renders at ${res} px: ${(100 * rate).toFixed(2)}% correct, ${((performance.now() - t0) / N).toFixed(1)} ms per image`,
    );
    expect(rate, misses.slice(0, 5).join('\n')).toBeGreaterThanOrEqual(0.99);
  });

  describe.each([16, 64])('rejects wrong images at %i px', (res) => {
    it('wrong colour (recoloured object, swapped colour binding)', () => {
      const cases = scenes
        .filter((s) => s.category === 'colors' || s.category === 'colorAttribution')
        .flatMap((scene) => {
          const recolour = scene.objects.map((o, i) => (i === 0 ? { ...o, color: other(COLORS, o.color, 2) } : o));
          const out = [{ scene, objects: recolour }];
          if (scene.category === 'colorAttribution') {
            const [a, b] = scene.objects;
            out.push({
              scene,
              objects: [
                { ...a, color: b.color },
                { ...b, color: a.color },
              ],
            });
          }
          return out;
        });
      expect(cases.length).toBeGreaterThan(80);
      const { rate, misses } = accuracy(cases, res, false);
      expect(rate, misses.slice(0, 5).join('\n')).toBe(1);
    });

    it('wrong count (one object removed, or the image blank)', () => {
      const counting = scenes.filter((s) => s.category === 'counting');
      const cases = [
        ...counting.map((scene) => ({ scene, objects: scene.objects.slice(1) })),
        ...scenes.slice(0, 60).map((scene) => ({ scene, objects: [] })),
      ];
      const { rate, misses } = accuracy(cases, res, false);
      expect(rate, misses.slice(0, 5).join('\n')).toBe(1);
    });

    it('wrong relation (the scene mirrored along the relation axis)', () => {
      const cases = scenes
        .filter((s) => s.category === 'position')
        .map((scene) => {
          const horizontal = scene.prompt.relation === 'left of' || scene.prompt.relation === 'right of';
          return { scene, objects: scene.objects.map((o) => (horizontal ? { ...o, cx: 1 - o.cx } : { ...o, cy: 1 - o.cy })) };
        });
      expect(cases.length).toBe(N / 6);
      const { rate, misses } = accuracy(cases, res, false);
      expect(rate, misses.slice(0, 5).join('\n')).toBe(1);
    });

    it('wrong shape (each object of a phrase given another shape)', () => {
      const cases = scenes
        .filter((s) => s.category !== 'position')
        .flatMap((scene) =>
          [1, 2].map((k) => ({
            scene,
            objects: scene.objects.map((o) => (o.shape === scene.prompt.phrases[0].shape ? { ...o, shape: other(SHAPES, o.shape, k) } : o)),
          })),
        );
      const { rate, misses } = accuracy(cases, res, false);
      expect(rate, misses.slice(0, 5).join('\n')).toBe(1);
    });
  });

  it('stays reliable on noisy renders at 32 px (Gaussian noise, sigma 0.1 in [-1, 1])', () => {
    const rng = new Rng(5);
    let ok = 0;
    for (const s of scenes) {
      const img = renderScene(s, 32);
      for (let i = 0; i < img.length; i++) img[i] += 0.1 * rng.normal();
      if (checkImageData(img, s.caption).correct) ok++;
    }
    console.log(`checker on noisy 32 px renders: ${((100 * ok) / N).toFixed(1)}% correct`);
    expect(ok / N).toBeGreaterThanOrEqual(0.95);
  });

  it('evaluates a batch tensor per category and overall, and reads tensors without leaking', async () => {
    const prompts = evalPrompts(24, 9);
    expect(prompts.map((p) => p.category)).toEqual(evalScenes(24, 9).map((s) => s.category));
    expect(evalPrompts(24, 9)).toEqual(prompts);
    const counts = new Map<string, number>();
    for (const p of prompts) counts.set(p.category, (counts.get(p.category) ?? 0) + 1);
    expect([...counts.values()]).toEqual([4, 4, 4, 4, 4, 4]);
    const truth = evalScenes(24, 9).map((s) => renderScene(s, 32));
    // Half the images blank: every category scores exactly 0.5 (each category has 4 prompts, 2 blank).
    const blank = renderScene([], 32);
    const mixed = truth.map((img, i) => (Math.floor(i / 6) % 2 === 0 ? img : blank));
    await withNoLeaks(async () => {
      const batch = imagesToTensor(mixed, 32);
      const res = await evaluate(batch, prompts);
      expect(res.overall).toBeCloseTo(0.5, 10);
      for (const v of Object.values(res.categories)) expect(v).toBeCloseTo(0.5, 10);
      const all = await evaluate(truth, prompts);
      expect(all.overall).toBe(1);
      const one = tf.tensor(truth[0], [1, 3, 32, 32]);
      const r = await checkImage(one, prompts[0].caption);
      expect(r.correct).toBe(true);
      expect(r.category).toBe(prompts[0].category);
      tf.dispose([batch, one]);
    });
  });

  it('rejects bad input with an InputError', async () => {
    const img = renderScene([], 32);
    expect(() => checkImageData(new Float32Array(100), 'a circle')).toThrow(/not 3 x H x H/);
    expect(() => checkImageData(renderScene([], 12), 'a circle')).toThrow(/at least 16 px, got 12 px/);
    expect(() => checkImageData(img, 'a hexagon')).toThrow(/expected a shape/);
    expect(() => checkImageData(img, { caption: 'a red circle', category: 'counting' })).toThrow(/is a colors caption/);
    await expect(evaluate([img], [])).rejects.toThrow(/1 images but 0 prompts/);
    await expect(checkImage(tf.zeros([3, 4, 5]), 'a circle')).rejects.toThrow(/shape \[3, H, H\]/);
  });
});
