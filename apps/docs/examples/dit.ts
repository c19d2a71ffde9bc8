// Memory-efficient attention, and a PixArt-style DiT built from a layout string: here the tiny T2MD
// student (attention in the first block, bidirectional Mamba-2 in the others).

import { initBackend, Rng } from '@t2md/core';
import { attention, createDiT, ditPresets, tinyStudent } from '@t2md/dit';
import * as tf from '@tensorflow/tfjs-core';

await initBackend();
const rng = new Rng(0);

// softmax(q kᵀ / sqrt(Dh) + mask) v without materialising the [Lq, Lk] scores; keyMask false = ignore that key.
const [B, H, L, Dh] = [2, 4, 256, 32];
const q = rng.randn([B, H, L, Dh]);
const k = rng.randn([B, H, L, Dh]);
const v = rng.randn([B, H, L, Dh]);
const keyMask = tf.tensor2d(
  Array.from({ length: B * L }, (_, i) => i % L < 200),
  [B, L],
  'bool',
);
const out = attention(q, k, v, { keyMask });
console.log('attention', out.shape); // [2, 4, 256, 32]

console.log('presets', Object.keys(ditPresets).join(', ')); // pixartXL2, t2mdXL2, shapesTeacher, ...
const model = createDiT({ ...tinyStudent, layout: 'SA-HM-WM-HM' });
console.log(model.config.layout, model.config.depth, 'blocks');

// One denoiser call: images [N, C, H, W], integer timesteps [N], caption features [N, Lc, Dc].
const c = model.config;
const x = rng.randn([2, c.inChannels, 16, 16]);
const t = tf.tensor1d([999, 10], 'int32');
const y = rng.randn([2, c.captionLength ?? 8, c.captionChannels]);
const eps = model.forward(x, t, y);
console.log('eps', eps.shape); // [2, 3, 16, 16]

model.dispose();
tf.dispose([q, k, v, keyMask, out, x, t, y, eps]);
