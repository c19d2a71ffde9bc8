// The T2MD losses on toy tensors, then the staged pipeline end to end on the tiny preset: train a
// teacher on the shapes world, distil it into the hybrid student, and load the result.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, Rng } from '@t2md/core';
import { denoiseLoss, distillStudent, forcingLoss, loadTrainedModel, mixerLoss, pseudoLoss, trainTeacher } from '@t2md/distill';
import { createCaptionEncoder, createDataset, VOCAB_SIZE } from '@t2md/shapes';
import * as tf from '@tensorflow/tfjs-core';

await initBackend();
const rng = new Rng(0);

// L = L_mse + 0.5 L_pseudo + 0.2 L_mixer (feature distillation); L_forcing for layer-level teacher forcing.
const eps = rng.randn([2, 3, 8, 8]);
const teacherEps = rng.randn([2, 3, 8, 8]);
const studentEps = rng.randn([2, 3, 8, 8]);
const taps = [rng.randn([2, 16, 32]), rng.randn([2, 16, 32])];
const loss = tf.tidy(() =>
  tf.addN([
    denoiseLoss(eps, studentEps),
    tf.mul(0.5, pseudoLoss(teacherEps, studentEps)),
    tf.mul(
      0.2,
      mixerLoss(
        taps,
        taps.map((t) => tf.mul(t, 0.9)),
      ),
    ),
  ]),
);
const forcing = forcingLoss([{ mixer: (h) => tf.mul(h, 0.5), input: taps[0], target: taps[1] }]);
console.log('distill loss', (await loss.data())[0], 'forcing loss', (await forcing.data())[0]);
tf.dispose([eps, teacherEps, studentEps, ...taps, loss, forcing]);

// The pipeline: what `t2md train` and `t2md distill` run. A few steps each, to show the calls.
const world = { data: createDataset, createEncoder: createCaptionEncoder, vocabSize: VOCAB_SIZE };
const dir = mkdtempSync(join(tmpdir(), 't2md-'));
const teacher = await trainTeacher({ out: join(dir, 'teacher'), preset: 'tiny', steps: 2, ...world });
console.log('teacher', teacher.stage, teacher.step, teacher.model);
const student = await distillStudent({ out: join(dir, 'student'), teacher: teacher.model!, preset: 'tiny', steps: 1, ...world });
console.log('student', student.stage, student.step, student.model);

const trained = loadTrainedModel(student.model!, createCaptionEncoder);
console.log(trained.model.config.layout, trained.spec);
trained.dispose();
