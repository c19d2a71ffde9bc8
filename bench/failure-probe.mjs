/**
 * Why a model's GenEval-style score misses: `t2md eval`'s prompts of the chosen categories, sampled as
 * `t2md eval` samples them (DPM-Solver++ 20 steps, batches of 25 with the same noise seeds) at one or
 * more CFG scales, each image judged by the checker, and its reasons tallied with the colour and shape
 * words left out ("expected 3 S, found 4"), so the kinds of failure add up.
 *
 *   node bench/failure-probe.mjs teacher [student FILE...] [--categories counting,twoObjects]
 *     [--seeds 0,1] [--cfg 4.5,3] [--list] [--json] [--backend wasm]
 *
 * `--list` prints every failed prompt with its reasons and what the checker detected. Every batch that
 * holds a chosen prompt is sampled whole (an image's noise depends on its batch), which at one seed is
 * all 200 prompts: about six minutes a model and CFG scale on a 2-core CPU (wasm).
 * bench/recipe.md ("sixth session") has the first measurement: the shipped teacher's two-object failures are
 * two objects of one shape, and its counting failures one object too many or too few.
 */
import { initBackend } from '@t2md/core';
import { loadTrainedModel } from '@t2md/distill';
import { CATEGORIES, checkImageData, createCaptionEncoder, evalPrompts, generate } from '@t2md/shapes';
import { probeArgs } from './probe-cli.mjs';

const PROMPTS = 200; // t2md eval's default prompt set
const BATCH = 25; // and its batch: batch b of seed s draws its noise from s·100003 + b

const usage =
  'node bench/failure-probe.mjs MODEL... [--categories a,b] [--seeds 0,1] [--cfg 4.5,3] [--list] [--json] [--backend wasm|cpu|webgpu]';
const { files, json, backend, values } = probeArgs('failure-probe', usage, {
  options: ['categories', 'seeds', 'cfg'],
  flags: ['list'],
});
const fail = (msg) => {
  process.stderr.write(`failure-probe: ${msg}\nusage: ${usage}\n`);
  process.exit(2);
};
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
const kind = (reasons) =>
  reasons
    .map((r) =>
      r
        .replace(/\b(red|green|blue|yellow|purple|orange|white|gray|grey|black|pink|cyan|brown) /g, '')
        .replace(/\b(circle|square|triangle|star|heart|diamond|cross|ring|hexagon)s?\b/g, 'S'),
    )
    .join(' & ');

const report = [];
for (const file of files) {
  const { model, encoder, prediction } = loadTrainedModel(file, createCaptionEncoder);
  for (const cfg of scales) {
    const tally = {};
    let correct = 0;
    let total = 0;
    for (const seed of seeds) {
      const all = evalPrompts(PROMPTS, seed);
      for (let b = 0; b * BATCH < all.length; b++) {
        const chunk = all.slice(b * BATCH, (b + 1) * BATCH);
        if (!chunk.some((p) => categories.includes(p.category))) continue;
        // the whole batch, as t2md eval samples it (the noise of an image depends on its batch)
        const { images } = await generate({
          model,
          encoder,
          prediction,
          prompt: chunk.map((p) => p.caption),
          steps: 20,
          cfg,
          seed: seed * 100003 + b,
        });
        const data = await images.data();
        images.dispose();
        const per = data.length / chunk.length;
        chunk.forEach((p, i) => {
          if (!categories.includes(p.category)) return;
          const r = checkImageData(data.subarray(i * per, (i + 1) * per), p);
          total += 1;
          correct += r.correct ? 1 : 0;
          const key = `${p.category}: ${r.correct ? 'correct' : kind(r.details.reasons)}`;
          tally[key] = (tally[key] ?? 0) + 1;
          if (list && !r.correct && !json) {
            const seen = r.details.detected.map((d) => `${d.color} ${d.shape}`).join(', ');
            console.log(`  "${p.caption}": ${r.details.reasons.join('; ')} (detected: ${seen || 'nothing'})`);
          }
        });
      }
    }
    report.push({ model: file, cfg, seeds, correct, total, tally });
    if (!json) {
      console.log(`\n${file}, CFG ${cfg}, seeds ${seeds.join(',')}: ${correct} of ${total} correct`);
      for (const [k, n] of Object.entries(tally).sort()) console.log(`${String(n).padStart(5)}  ${k}`);
    }
  }
  model.dispose();
  encoder.dispose();
}
if (json) console.log(JSON.stringify(report, null, 2));
