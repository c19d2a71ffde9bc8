/**
 * Why a model's GenEval-style score misses: `t2md eval`'s prompts of the chosen categories, sampled as
 * `t2md eval` samples them (its `scoreModel`: DPM-Solver++ 20 steps, batches of 25, the same noise) at one or
 * more CFG scales, each image judged by the checker, and its reasons tallied with the colour and shape
 * words left out ("expected 3 S, found 4"), so the kinds of failure add up.
 *
 *   node bench/failure-probe.mjs teacher [student FILE...] [--categories counting,twoObjects]
 *     [--seeds 0,1] [--cfg 4.5,3] [--list] [--json] [--backend wasm]
 *
 * `--list` prints every failed prompt with its reasons and what the checker detected. All 200 prompts
 * are sampled (an image's noise depends on its batch): about six minutes a model, CFG scale and seed on
 * a 2-core CPU (wasm).
 * bench/recipe.md ("sixth session") has the first measurement: the shipped teacher's two-object failures are
 * two objects of one shape, and its counting failures one object too many or too few.
 */

import { scoreModel } from '@t2md/cli';
import { initBackend } from '@t2md/core';
import { loadTrainedModel } from '@t2md/distill';
import { CATEGORIES, COLORS, createCaptionEncoder, SHAPE_PLURALS, SHAPES } from '@t2md/shapes';
import { probeArgs } from './probe-cli.mjs';

const PROMPTS = 200; // t2md eval's default prompt set (its batch of 25 is scoreModel's default too)

const usage =
  'node bench/failure-probe.mjs MODEL... [--categories a,b] [--seeds 0,1] [--cfg 4.5,3] [--list] [--json] [--backend wasm|cpu|webgpu]';
const { files, json, backend, values, fail } = probeArgs('failure-probe', usage, {
  options: ['categories', 'seeds', 'cfg'],
  flags: ['list'],
});
const categories = (values.categories ?? 'counting,twoObjects').split(',');
for (const c of categories) if (!CATEGORIES.includes(c)) fail(`--categories names '${c}', which is not one of ${CATEGORIES.join(', ')}`);
const numbers = (flag, text, ok) =>
  text.split(',').map((v) => {
    const n = Number(v);
    if (v.trim() === '' || !ok(n)) fail(`${flag} takes numbers separated by commas, got '${text}'`);
    return n;
  });
const seeds = numbers('--seeds', values.seeds ?? '0', (n) => Number.isInteger(n) && n >= 0);
const scales = numbers('--cfg', values.cfg ?? '4.5', (n) => Number.isFinite(n) && n >= 0);
const list = values.list === true;

await initBackend({ backend });

/** The checker's reasons without colour and shape words: one kind of failure, whatever the objects. */
const COLOR_WORD = new RegExp(`\\b(${COLORS.join('|')}) `, 'g');
const SHAPE_WORD = new RegExp(`\\b(${[...SHAPES, ...SHAPES.map((s) => SHAPE_PLURALS[s])].join('|')})\\b`, 'g');
const kind = (reasons) => reasons.map((r) => r.replace(COLOR_WORD, '').replace(SHAPE_WORD, 'S')).join(' & ');

const report = [];
for (const file of files) {
  const trained = loadTrainedModel(file, createCaptionEncoder);
  for (const cfg of scales) {
    const tally = {};
    let correct = 0;
    let total = 0;
    for (const seed of seeds) {
      // t2md eval's own sampling and checking: its prompt set, batches and noise seeds
      const { checks } = await scoreModel(trained, { prompts: PROMPTS, steps: 20, cfg, seed });
      for (const { prompt, result } of checks.filter((c) => categories.includes(c.prompt.category))) {
        total += 1;
        correct += result.correct ? 1 : 0;
        const key = `${prompt.category}: ${result.correct ? 'correct' : kind(result.details.reasons)}`;
        tally[key] = (tally[key] ?? 0) + 1;
        if (list && !result.correct && !json) {
          const seen = result.details.detected.map((d) => `${d.color} ${d.shape}`).join(', ');
          console.log(`  "${prompt.caption}": ${result.details.reasons.join('; ')} (detected: ${seen || 'nothing'})`);
        }
      }
    }
    report.push({ model: file, cfg, seeds, correct, total, tally });
    if (!json) {
      console.log(`\n${file}, CFG ${cfg}, seeds ${seeds.join(',')}: ${correct} of ${total} correct`);
      for (const [k, n] of Object.entries(tally).sort()) console.log(`${String(n).padStart(5)}  ${k}`);
    }
  }
  trained.model.dispose();
  trained.encoder.dispose();
}
if (json) console.log(JSON.stringify(report, null, 2));
