import { initBackend, Rng } from '@t2md/core';
import { noiseBatch, shapesPreset } from '@t2md/distill';
import { createDiT, transferFromTeacher } from '@t2md/dit';
import { alphasCumprod } from '@t2md/sampler';
import { createCaptionEncoder, createDataset, VOCAB_SIZE } from '@t2md/shapes';
import * as tf from '@tensorflow/tfjs-core';

const be = process.argv[2] ?? 'wasm';
const B = Number(process.argv[3] ?? 512);
await initBackend({ backend: be });
const p = shapesPreset;
const teacher = createDiT(p.teacher);
const enc = createCaptionEncoder({ vocabSize: VOCAB_SIZE, maxLength: p.captionTokens, ...p.textEncoder, seed: p.seed });
const student = createDiT(p.student);
transferFromTeacher(student, teacher);
const data = createDataset({ seed: p.dataSeed, resolution: 32, batchSize: B, maxTokens: p.captionTokens });
const rng = new Rng(0);
const nb = noiseBatch(data.next(), rng, alphasCumprod(p.schedule), 0.1, 2);
const y = enc.encode(nb.tokens, nb.mask);
const check = async (name, t) => {
  const d = await t.data();
  let bad = 0,
    first = -1;
  for (let i = 0; i < d.length; i++)
    if (!Number.isFinite(d[i])) {
      bad++;
      if (first < 0) first = i;
    }
  console.log(name, t.shape.join('x'), 'nonfinite', bad, 'first', first);
};
await check('y', y);
const cap = student.forward(nb.xt, nb.t, y, { yMask: nb.mask, dropCaption: nb.drop, capture: true });
for (const tap of cap.taps) {
  await check(`tap${tap.block} ${tap.kind} in`, tap.input);
  await check(`tap${tap.block} out`, tap.output);
}
await check('out', cap.out);
