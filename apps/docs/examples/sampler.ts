// Any function (x, t) → prediction is a model. This one knows the data is the constant image 0.5, so it
// can return the exact noise; every sampler must then land on 0.5.

import { initBackend } from '@t2md/core';
import { alphasCumprod, type ModelFn, SAMPLER_NAMES, sample } from '@t2md/sampler';
import * as tf from '@tensorflow/tfjs-core';

await initBackend();
const target = 0.5;
const abar = alphasCumprod(); // the default linear schedule, 1000 training steps

// epsilon = (x - sqrt(abar_t) x0) / sqrt(1 - abar_t), per row of the batch
const model: ModelFn = (x, t) =>
  tf.tidy(() => {
    const a = tf.gather(tf.tensor1d(Float32Array.from(abar)), t); // [N]
    const s = (v: tf.Tensor) => tf.reshape(v, [-1, 1, 1, 1]);
    return tf.div(tf.sub(x, tf.mul(s(tf.sqrt(a)), target)), s(tf.sqrt(tf.sub(1, a))));
  });

for (const sampler of SAMPLER_NAMES) {
  const img = await sample({
    model,
    sampler,
    steps: 20,
    shape: [1, 3, 8, 8],
    seed: 0,
    onStep: ({ step, total }) => {
      if (step === total) console.log(`${sampler}: ${total} steps`);
    },
  });
  const mean = (await tf.mean(img).data())[0];
  console.log(`${sampler} → mean ${mean.toFixed(4)} (target ${target})`);
  img.dispose();
}
