import { initBackend, Rng } from '@t2md/core';
import { createTrainStep, disposeStepResult, shapesPreset } from '@t2md/distill';
import { createDiT } from '@t2md/dit';
import { alphasCumprod } from '@t2md/sampler';
import { createCaptionEncoder, createDataset, VOCAB_SIZE } from '@t2md/shapes';
import * as tf from '@tensorflow/tfjs-core';

const B = Number(process.argv[2] ?? 2),
  N = Number(process.argv[3] ?? 10);
await initBackend({ backend: 'webgpu' });
const p = shapesPreset;
const model = createDiT(p.teacher);
const encoder = createCaptionEncoder({ vocabSize: VOCAB_SIZE, maxLength: p.captionTokens, ...p.textEncoder, seed: p.seed });
const cfg = { ...p.stages.teacher, batchSize: B };
const st = createTrainStep({ stage: 'teacher', cfg, models: { model, encoder }, alphasCumprod: alphasCumprod(p.schedule) });
const data = createDataset({ seed: 1, resolution: 32, batchSize: B, maxTokens: p.captionTokens });
const rng = new Rng(0);
let last;
for (let i = 0; i < 3; i++) {
  const r = st.step(data.next(), rng, 1e-4);
  if (last) disposeStepResult(last);
  last = r;
}
await last.loss.data();
const t0 = performance.now();
let host = 0;
for (let i = 0; i < N; i++) {
  const h0 = performance.now();
  const r = st.step(data.next(), rng, 1e-4);
  host += performance.now() - h0;
  disposeStepResult(last);
  last = r;
}
await last.loss.data();
console.log('ms/step', ((performance.now() - t0) / N).toFixed(1), 'host ms/step', (host / N).toFixed(1));
process.exit(0);
