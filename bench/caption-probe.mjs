/**
 * Does a model tell its caption words apart? For each model file, pairs of captions that differ in one
 * word (the relation, a colour, a shape, a count) go through the file's caption encoder and its DiT:
 *
 * - `encoder`: |a − b| / |a| of the encoder's output at the first token that differs (the caption
 *   features the DiT's cross-attention reads). A word the encoder maps to nearly the vector of its
 *   partner (left/right at 0.07 in the 2026-12-07 teacher, against red/green at 1.25) cannot steer the
 *   image. Since the tokenizer reads one form per relation (0174f8e), "A right of B" is tokenized as "B
 *   left of A", so the relation pairs differ first at the swapped phrases and this column shows a colour
 *   word; the `dit` column is the one that says whether the relation moves the image.
 * - `dit`: |out(a) − out(b)| over the image, the model's prediction at t = 500 on one fixed noise
 *   image (the same for every caption), and `÷colour`: that as a fraction of the red/green pair's.
 *
 *   node bench/caption-probe.mjs teacher student path/to/model.safetensors [--json] [--backend wasm]
 *
 * `teacher` and `student` name the shipped files in packages/shapes/models/. Takes seconds on a CPU.
 * bench/recipe.md ("2026-12-07, second session") has the first measurement and why it matters.
 */
import { initBackend } from '@t2md/core';
import { loadTrainedModel } from '@t2md/distill';
import { createCaptionEncoder, tokenize, tokenizeToTensors } from '@t2md/shapes';
import * as tf from '@tensorflow/tfjs-core';
import { probeArgs } from './probe-cli.mjs';

const PAIRS = [
  ['relation (left/right)', 'a red circle left of a blue square', 'a red circle right of a blue square'],
  ['relation (above/below)', 'a red circle above a blue square', 'a red circle below a blue square'],
  ['colour', 'a red circle left of a blue square', 'a green circle left of a blue square'],
  ['shape', 'a red circle left of a blue square', 'a red square left of a blue square'],
  ['count', 'two red circles', 'three red circles'],
];
const T = 500;

const { files, json, backend } = probeArgs('caption-probe', 'node bench/caption-probe.mjs MODEL... [--json] [--backend wasm|cpu|webgpu]');

await initBackend({ backend });
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const diff = (a, c) => norm(a.map((x, i) => x - c[i]));

const report = [];
for (const file of files) {
  const { model, encoder } = loadTrainedModel(file, createCaptionEncoder);
  const noise = tf.randomNormal([1, model.config.inChannels, 32, 32], 0, 1, 'float32', 7);
  const rows = [];
  for (const [what, a, c] of PAIRS) {
    const { tokens, mask } = tokenizeToTensors([a, c]);
    const feats = encoder.encode(tokens, mask); // [2, L, D]
    const out = tf.tidy(() => model.forward(tf.concat([noise, noise]), tf.fill([2], T, 'float32'), feats, { yMask: mask })); // [2, C, 32, 32]
    const f = await feats.array();
    const o = (await out.array()).map((r) => r.flat(2).flat());
    tf.dispose([tokens, mask, feats, out]);
    const ta = tokenize(a).ids;
    const tc = tokenize(c).ids;
    const at = ta.findIndex((id, j) => id !== tc[j]);
    rows.push({ pair: what, a, b: c, encoder: diff(f[0][at], f[1][at]) / norm(f[0][at]), dit: diff(o[0], o[1]) });
  }
  const colour = rows.find((r) => r.pair === 'colour').dit;
  for (const r of rows) r.ofColour = r.dit / colour;
  noise.dispose();
  model.dispose();
  encoder.dispose();
  report.push({ file, t: T, rows });
}

if (json) {
  process.stdout.write(`${JSON.stringify({ backend, pairs: report }, null, 2)}\n`);
} else {
  for (const { file, rows } of report) {
    console.log(`\n${file}`);
    console.log(`| the captions differ in | encoder (at that token) | dit (t = ${T}) | ÷colour |`);
    console.log('|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.pair} | ${r.encoder.toFixed(2)} | ${r.dit.toFixed(3)} | ${r.ofColour.toFixed(3)} |`);
  }
}
