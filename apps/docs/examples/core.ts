// Start a backend, draw seeded noise, run a fused kernel with its gradient, and round-trip safetensors.

import { geluTanh, initBackend, loadSafetensors, Rng, saveSafetensors } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';

const info = await initBackend(); // {backend, adapter?, software}
console.log(`running on ${info.backend}${info.adapter ? ` (${info.adapter.description})` : ''}`);

const x = new Rng(42).randn([4, 8]); // the same numbers on cpu, wasm and webgpu
const dx = tf.grad((v: tf.Tensor) => tf.sum(geluTanh(v)))(x);

const bytes = await saveSafetensors({ x, dx }, { note: 'example' });
const { tensors, metadata } = loadSafetensors(bytes);
console.log(metadata.note, tensors.dx.shape);
tf.dispose([x, dx, ...Object.values(tensors)]);
