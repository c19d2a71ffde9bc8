// The shapes world: a random captioned scene, its rendering, the tokenizer, the GenEval-style checker
// scoring the rendering against its caption, and prompt → image with the shipped student model.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { initBackend, loadSafetensors, Rng } from '@t2md/core';
import { loadDiT, readPrediction } from '@t2md/dit';
import { captionEncoderFromTensors, evaluate, generate, imagesToTensor, renderScene, sampleScene, tokenize } from '@t2md/shapes';
import * as tf from '@tensorflow/tfjs-core';

await initBackend();

const scene = sampleScene(new Rng(7), 'position');
console.log(scene.caption, scene.objects.length, 'objects');

const image = renderScene(scene, 32); // CHW Float32Array in [-1, 1]
console.log('tokens', Array.from(tokenize(scene.caption).ids));

const images = imagesToTensor([image], 32); // [1, 3, 32, 32]
const score = await evaluate(images, [scene.caption]);
console.log('checker on the ground truth:', score.overall); // 1
images.dispose();

// The shipped models: packages/shapes/models/{teacher,student}.safetensors.
const file = join(dirname(createRequire(import.meta.url).resolve('@t2md/shapes/package.json')), 'models', 'student.safetensors');
if (existsSync(file)) {
  const bytes = new Uint8Array(readFileSync(file));
  const model = loadDiT(bytes, { prefix: 'model.' });
  const { tensors, metadata } = loadSafetensors(bytes);
  const encoder = captionEncoderFromTensors(JSON.parse(metadata['t2md.text_encoder']), tensors);
  tf.dispose(Object.values(tensors));

  const prompt = 'two red circles left of a blue square';
  const { images: out, msPerStep } = await generate({
    model,
    encoder,
    prediction: readPrediction(metadata, file), // what the file's model outputs (absent: epsilon)
    prompt,
    steps: 20,
    seed: 1,
    onStep: ({ step, total }) => console.log(`step ${step}/${total}`),
  });
  const result = await evaluate(out, [prompt]);
  console.log(`${msPerStep.toFixed(1)} ms per step; the checker says ${result.results[0].correct ? 'correct' : 'wrong'}`);
  out.dispose();
  model.dispose();
  encoder.dispose();
} else {
  console.log(`no shipped model at ${file}`);
}
