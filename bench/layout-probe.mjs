/**
 * Does a model place the objects where its caption's relation says, at the timesteps where the layout
 * is decided? For "a red circle R a blue square" (R = left of, right of, above, below) each model file
 * predicts x_0 from N pure-noise images at t = 999, 900 and 800 (ε or v, as the file says; at t ≥ 800
 * x_t is nearly pure noise, which is what the sampler feeds it). Near t = 999 the best answer is the
 * training data's mean image for that caption, so a model that has learnt the relation puts its red
 * mass on the named side of its blue mass.
 *
 * - `model`: the red mass's centroid minus the blue mass's, in pixels along the relation's axis
 *   (x for left/right, y for above/below; red = max(R − B, 0), blue = max(B − R, 0) of the prediction);
 * - `data`: the same offset, circle centre minus square centre, over 2,000 scenes the shapes world draws
 *   for that relation (`sampleScene`), the value a perfect mean-image prediction approaches.
 *
 *   node bench/layout-probe.mjs teacher student path/to/model.safetensors [--json] [--backend wasm]
 *
 * Takes about 20 s a model on a 2-core CPU. bench/recipe.md ("2026-12-07, fifth session") has the
 * first measurement: the shipped teacher's offsets are the same for left and right.
 */
import { initBackend, Rng } from '@t2md/core';
import { loadTrainedModel } from '@t2md/distill';
import { alphasCumprod } from '@t2md/sampler';
import { createCaptionEncoder, RELATIONS, sampleScene, tokenizeToTensors } from '@t2md/shapes';
import * as tf from '@tensorflow/tfjs-core';
import { probeArgs } from './probe-cli.mjs';

const N = 16;
const SIZE = 32; // the shapes models are trained at 32 px
const TS = [999, 900, 800];
const SCENES = 2000;

const { files, json, backend } = probeArgs('layout-probe', 'node bench/layout-probe.mjs MODEL... [--json] [--backend wasm|cpu|webgpu]');
await initBackend({ backend });
const horizontal = (rel) => rel === 'left of' || rel === 'right of';

/** The data's mean offset (first object's centre minus the second's, px along the relation's axis). */
function dataOffsets() {
  const rng = new Rng(1);
  const sum = Object.fromEntries(RELATIONS.map((r) => [r, { s: 0, n: 0 }]));
  for (let i = 0; i < SCENES; i++) {
    const scene = sampleScene(rng, 'position');
    const rel = scene.prompt.relation;
    const [a, b] = scene.objects; // phrase A's object first (count-1 phrases in position prompts)
    sum[rel].s += (horizontal(rel) ? a.cx - b.cx : a.cy - b.cy) * SIZE;
    sum[rel].n += 1;
  }
  return Object.fromEntries(RELATIONS.map((r) => [r, sum[r].s / sum[r].n]));
}

/** Red minus blue centroid (px along `axis`: 3 = x, 2 = y) of x_0 `[N, 3, H, W]`, pooled over N. */
function redMinusBlue(x0, axis) {
  return tf.tidy(() => {
    const [r, , b] = tf.unstack(x0, 1); // [N, H, W] each
    const red = tf.relu(tf.sub(r, b));
    const blue = tf.relu(tf.sub(b, r));
    const coord = axis === 3 ? tf.reshape(tf.range(0, SIZE), [1, 1, SIZE]) : tf.reshape(tf.range(0, SIZE), [1, SIZE, 1]);
    const centroid = (m) => tf.div(tf.sum(tf.mul(m, coord)), tf.sum(m));
    return tf.sub(centroid(red), centroid(blue)).dataSync()[0];
  });
}

const ab = alphasCumprod();
const data = dataOffsets();
const report = [];
for (const file of files) {
  const { model, encoder, prediction } = loadTrainedModel(file, createCaptionEncoder);
  const rows = [];
  for (const rel of RELATIONS) {
    const { tokens, mask } = tokenizeToTensors(Array(N).fill(`a red circle ${rel} a blue square`));
    const y = encoder.encode(tokens, mask);
    const offsets = TS.map((t) => {
      const [a, s] = [Math.sqrt(ab[t]), Math.sqrt(1 - ab[t])];
      return tf.tidy(() => {
        const x = tf.randomNormal([N, 3, SIZE, SIZE], 0, 1, 'float32', 5);
        const out = tf.slice(model.forward(x, tf.fill([N], t), y, { yMask: mask }), [0, 0, 0, 0], [-1, 3, -1, -1]);
        // x_0 from ε: (x − σ ε) / α; from v: α x − σ v
        const x0 = prediction === 'v' ? tf.sub(tf.mul(x, a), tf.mul(out, s)) : tf.div(tf.sub(x, tf.mul(out, s)), a);
        return redMinusBlue(x0, horizontal(rel) ? 3 : 2);
      });
    });
    tf.dispose([tokens, mask, y]);
    rows.push({ relation: rel, data: data[rel], model: Object.fromEntries(TS.map((t, i) => [t, offsets[i]])) });
  }
  model.dispose();
  encoder.dispose();
  report.push({ file, rows });
}

if (json) {
  process.stdout.write(`${JSON.stringify({ backend, n: N, scenes: SCENES, models: report }, null, 2)}\n`);
} else {
  for (const { file, rows } of report) {
    console.log(`\n${file}: red minus blue centre, px along the relation's axis`);
    console.log(`| relation | data | ${TS.map((t) => `model, t = ${t}`).join(' | ')} |`);
    console.log(`|---|---|${TS.map(() => '---').join('|')}|`);
    for (const r of rows) console.log(`| ${r.relation} | ${r.data.toFixed(1)} | ${TS.map((t) => r.model[t].toFixed(2)).join(' | ')} |`);
  }
}
