/**
 * How far is a student's guidance direction from its teacher's, timestep by timestep? For each prompt
 * and t, on N fixed noise images x (at t ≥ 700 x_t is nearly pure noise, so that is what the sampler
 * sees there), both models give their conditional and null-caption ε; the table shows
 *
 * - `g err`: |g_S − g_T| / |g_T| with g = ε(x, caption) − ε(x, null caption), the direction classifier-free
 *   guidance multiplies by (scale − 1); at the high noise where the layout is decided, g is ~0.1% of ε,
 *   so a plain ε-space L_pseudo hardly sees it (why `t2md distill --pseudo-x0` exists);
 * - `|g_S|/|g_T|`: the student's guidance strength relative to its teacher's.
 *
 *   node bench/guidance-probe.mjs [STUDENT...] [--teacher FILE] [--json] [--backend wasm|cpu|webgpu]
 *
 * STUDENT defaults to the shipped student, --teacher to the shipped teacher (`teacher`/`student` name
 * packages/shapes/models/ files). About a minute per student on a 2-core CPU.
 */
import { initBackend } from '@t2md/core';
import { loadTrainedModel } from '@t2md/distill';
import { createCaptionEncoder, tokenizeToTensors } from '@t2md/shapes';
import * as tf from '@tensorflow/tfjs-core';
import { probeArgs, shippedModel } from './probe-cli.mjs';

const PROMPTS = ['a circle', 'a red circle', 'two red circles', 'a red circle left of a blue square'];
const TS = [950, 800, 700, 600]; // below ~600 pure noise is no longer what the sampler feeds the model
const N = 8;

const { files, json, backend, values, exists } = probeArgs(
  'guidance-probe',
  'node bench/guidance-probe.mjs [STUDENT...] [--teacher FILE] [--json] [--backend wasm|cpu|webgpu]',
  { options: ['teacher'], models: ['student'] },
);
const teacherFile = exists(shippedModel(values.teacher ?? 'teacher'));

await initBackend({ backend });
const norm = (t) => tf.tidy(() => tf.norm(t).dataSync()[0]);

/** ε(x, caption) and ε(x, null caption) `[N, C, H, W]` each. */
function condUncond({ model, encoder }, x, t, tokens, mask) {
  return tf.tidy(() => {
    const C = model.config.inChannels;
    const eps = (y, m) => tf.slice(model.forward(x, tf.fill([N], t), y, { yMask: m }), [0, 0, 0, 0], [-1, C, -1, -1]);
    return [eps(encoder.encode(tokens, mask), mask), eps(model.nullCaption(N), tf.ones(mask.shape, 'bool'))];
  });
}

const teacher = loadTrainedModel(teacherFile, createCaptionEncoder);
const report = [];
for (const file of files) {
  const student = loadTrainedModel(file, createCaptionEncoder);
  const size = 32; // the shapes models are trained at 32 px
  const rows = [];
  for (const prompt of PROMPTS) {
    const { tokens, mask } = tokenizeToTensors(Array(N).fill(prompt));
    for (const t of TS) {
      const x = tf.randomNormal([N, teacher.model.config.inChannels, size, size], 0, 1, 'float32', t);
      const [tc, tu] = condUncond(teacher, x, t, tokens, mask);
      const [sc, su] = condUncond(student, x, t, tokens, mask);
      const [gT, gS] = [tf.sub(tc, tu), tf.sub(sc, su)];
      const gErr = tf.sub(gS, gT);
      rows.push({ prompt, t, gErr: norm(gErr) / norm(gT), gRatio: norm(gS) / norm(gT), gOfEps: norm(gT) / norm(tc) });
      tf.dispose([x, tc, tu, sc, su, gT, gS, gErr]);
    }
    tf.dispose([tokens, mask]);
  }
  student.model.dispose();
  student.encoder.dispose();
  report.push({ file, rows });
}

if (json) {
  process.stdout.write(`${JSON.stringify({ backend, teacher: teacherFile, n: N, students: report }, null, 2)}\n`);
} else {
  for (const { file, rows } of report) {
    console.log(`\n${file} against ${teacherFile}`);
    console.log(`| prompt | ${TS.map((t) => `t = ${t}: g err, |g_S|/|g_T|`).join(' | ')} |`);
    console.log(`|---|${TS.map(() => '---').join('|')}|`);
    for (const prompt of PROMPTS) {
      const cells = rows.filter((r) => r.prompt === prompt).map((r) => `${r.gErr.toFixed(2)}, ${r.gRatio.toFixed(2)}`);
      console.log(`| ${prompt} | ${cells.join(' | ')} |`);
    }
  }
}
