import { initBackend, Rng } from '@t2md/core';
import { createTrainStep, disposeStepResult, shapesPreset } from '@t2md/distill';
import { createDiT, transferFromTeacher } from '@t2md/dit';
import { alphasCumprod } from '@t2md/sampler';
import { createCaptionEncoder, createDataset, VOCAB_SIZE } from '@t2md/shapes';
import * as tf from '@tensorflow/tfjs-core';

const which = process.argv[2] ?? 'teacher';
await initBackend({ backend: process.argv[3] ?? 'wasm' });
const p = shapesPreset;
const B = 2;
const teacher = createDiT(p.teacher);
const encoder = createCaptionEncoder({ vocabSize: VOCAB_SIZE, maxLength: p.captionTokens, ...p.textEncoder, seed: p.seed });
let models = { model: teacher, encoder };
if (which === 'distill') {
  const s = createDiT(p.student);
  transferFromTeacher(s, teacher);
  models = { model: s, encoder, teacher };
}
const cfg = { ...p.stages[which], batchSize: B };
const st = createTrainStep({ stage: which, cfg, models, alphasCumprod: alphasCumprod(p.schedule) });
const data = createDataset({ seed: 1, resolution: 32, batchSize: B, maxTokens: p.captionTokens });
const rng = new Rng(0);
disposeStepResult(st.step(data.next(), rng, 1e-4));
const info = await tf.profile(() => {
  disposeStepResult(st.step(data.next(), rng, 1e-4));
});
const c = new Map();
for (const k of info.kernels) c.set(k.name, (c.get(k.name) ?? 0) + 1);
console.log('total kernels', info.kernels.length);
console.log(
  [...c.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}:${v}`)
    .join(' '),
);
