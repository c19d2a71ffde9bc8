/**
 * Experiments on the GPU machine around one training step (not part of the library or the CLI):
 *   node .gpu/exp-train.mjs time teacher|distill BATCH STEPS [SUBMIT_BATCH]
 *     ms/step and host ms/step of STEPS steps; SUBMIT_BATCH sets tfjs-webgpu's
 *     WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE (dispatches per queue submit, tfjs default 15).
 *   node .gpu/exp-train.mjs nan BATCH
 *     the distillation step's forward pieces at BATCH, each checked for non-finite values.
 * Dawn flags come from T2MD_DAWN_FLAGS (';'-separated), as in bench/gpu.ts.
 * Bundle with `../shared/device/pack.sh bench/exp-train.ts`.
 */
import { initBackend, Rng } from '@t2md/core';
import { createDiT, transferFromTeacher } from '@t2md/dit';
import { createTrainStep, disposeStepResult, noiseBatch, shapesPreset } from '@t2md/distill';
import { alphasCumprod } from '@t2md/sampler';
import { createCaptionEncoder, createDataset, VOCAB_SIZE } from '@t2md/shapes';
import * as tf from '@tensorflow/tfjs-core';
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const flags = (process.env.T2MD_DAWN_FLAGS ?? '')
  .split(';')
  .map((s) => s.trim())
  .filter(Boolean);
Object.defineProperty(globalThis, 'navigator', { value: { gpu: create(flags) }, configurable: true, writable: true });

const [mode, a1, a2, a3, a4] = process.argv.slice(2);
await initBackend({ backend: 'webgpu' });
const p = shapesPreset;
const teacher = createDiT(p.teacher);
const encoder = createCaptionEncoder({ vocabSize: VOCAB_SIZE, maxLength: p.captionTokens, ...p.textEncoder, seed: p.seed });

async function finite(t: tf.Tensor): Promise<number> {
  const d = await t.data();
  let bad = 0;
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) bad++;
  return bad;
}

if (mode === 'time') {
  const which = a1 === 'distill' ? 'distill' : 'teacher';
  const B = Number(a2);
  const N = Number(a3);
  if (a4) tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', Number(a4));
  let models: Parameters<typeof createTrainStep>[0]['models'] = { model: teacher, encoder };
  if (which === 'distill') {
    const s = createDiT(p.student);
    transferFromTeacher(s, teacher);
    models = { model: s, encoder, teacher };
  }
  const cfg = { ...p.stages[which], batchSize: B };
  const st = createTrainStep({ stage: which, cfg, models, alphasCumprod: alphasCumprod(p.schedule) });
  const data = createDataset({ seed: 1, resolution: 32, batchSize: B, maxTokens: p.captionTokens });
  const rng = new Rng(0);
  let last = st.step(data.next(), rng, 1e-4);
  for (let i = 0; i < 2; i++) {
    const r = st.step(data.next(), rng, 1e-4);
    disposeStepResult(last);
    last = r;
  }
  await last.loss.data();
  const t0 = performance.now();
  let host = 0;
  let dataMs = 0;
  for (let i = 0; i < N; i++) {
    const h0 = performance.now();
    const b = data.next();
    dataMs += performance.now() - h0;
    const r = st.step(b, rng, 1e-4);
    host += performance.now() - h0;
    disposeStepResult(last);
    last = r;
  }
  const loss = (await last.loss.data())[0];
  const ms = (performance.now() - t0) / N;
  console.log(
    JSON.stringify({ which, batch: B, submitBatch: a4 ?? 15, flags, msPerStep: +ms.toFixed(1), hostMs: +(host / N).toFixed(1), dataMs: +(dataMs / N).toFixed(1), samplesPerSec: Math.round((1000 * B) / ms), loss }),
  );
} else if (mode === 'nan') {
  const B = Number(a1);
  const s = createDiT(p.student);
  transferFromTeacher(s, teacher);
  const data = createDataset({ seed: 1, resolution: 32, batchSize: B, maxTokens: p.captionTokens });
  const nb = noiseBatch(data.next(), new Rng(0), alphasCumprod(p.schedule), 0.1, 2);
  const y = encoder.encode(nb.tokens, nb.mask);
  const report: Record<string, number> = { y: await finite(y) };
  const opts = { yMask: nb.mask, dropCaption: nb.drop, capture: true as const };
  for (const [name, model] of [
    ['teacher', teacher],
    ['student', s],
  ] as const) {
    const cap = model.forward(nb.xt, nb.t, y, opts);
    for (const tap of cap.taps) {
      report[`${name}.${tap.block}.${tap.kind}.in`] = await finite(tap.input);
      report[`${name}.${tap.block}.out`] = await finite(tap.output);
    }
    report[`${name}.out`] = await finite(cap.out);
    tf.dispose([cap.out, ...cap.taps.flatMap((t) => [t.input, t.output])]);
  }
  // The first Mamba block alone, on a clean input, piece by piece.
  const h = tf.randomNormal([B, 256, 128]);
  const m = s.blocks[1]!.mixer.apply(h, [16, 16]);
  report['mixer1.random'] = await finite(m);
  console.log(JSON.stringify({ batch: B, nonFinite: report }));
}
process.exit(0);
