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
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '@t2md/core';
import { loadTrainedModel } from '@t2md/distill';
import { createCaptionEncoder, tokenizeToTensors } from '@t2md/shapes';
import * as tf from '@tensorflow/tfjs-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PROMPTS = ['a circle', 'a red circle', 'two red circles', 'a red circle left of a blue square'];
const TS = [950, 800, 700, 600]; // below ~600 pure noise is no longer what the sampler feeds the model
const N = 8;

const fail = (msg) => {
  process.stderr.write(
    `guidance-probe: ${msg}\nusage: node bench/guidance-probe.mjs [STUDENT...] [--teacher FILE] [--json] [--backend wasm|cpu|webgpu]\n`,
  );
  process.exit(2);
};
const shipped = (m) => (m === 'teacher' || m === 'student' ? join(root, 'packages', 'shapes', 'models', `${m}.safetensors`) : m);
const args = process.argv.slice(2);
const valued = new Set(['--teacher', '--backend']);
const opts = {};
const files = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--json') opts.json = true;
  else if (valued.has(a)) {
    if (args[i + 1] == null || args[i + 1].startsWith('--')) fail(`${a} needs a value`);
    opts[a.slice(2)] = args[++i];
  } else if (a.startsWith('--')) fail(`unknown option ${a}`);
  else files.push(shipped(a));
}
const backend = opts.backend ?? 'wasm';
if (!['wasm', 'cpu', 'webgpu'].includes(backend)) fail(`--backend must be wasm, cpu or webgpu, got ${JSON.stringify(backend)}`);
const teacherFile = shipped(opts.teacher ?? 'teacher');
if (files.length === 0) files.push(shipped('student'));
for (const f of [teacherFile, ...files])
  if (!existsSync(f)) fail(`${f} does not exist; pass teacher, student or a file that t2md train or distill wrote`);

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

if (opts.json) {
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
