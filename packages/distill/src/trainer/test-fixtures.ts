/**
 * Test fixtures (not exported by the package): a micro preset small enough for many CPU steps in a
 * test, a deterministic resumable synthetic data source, and the real caption encoder of @t2md/shapes.
 */
import { Rng } from '@t2md/core';
import type { DiTConfig } from '@t2md/dit';
import { createCaptionEncoder } from '@t2md/shapes'; // a dev dependency: the CLI passes the encoder in at run time
import * as tf from '@tensorflow/tfjs-core';
import { type StageConfig, type StageName, type TrainPreset, tinyPreset } from './config.js';
import { loadTrainedModel, TRAIN_KEY } from './model-file.js';
import type { DataFactory, DataSource, TextEncoderFactory } from './types.js';

/** Noise N(0, 0.05²) on every weight, so the zero-initialised gates and projections pass gradients. */
export function perturb(model: { weights(): Record<string, tf.Variable> }, seed: number): void {
  const rng = new Rng(seed);
  for (const v of Object.values(model.weights())) {
    const next = tf.tidy(() => tf.add(v, tf.mul(rng.randn(v.shape), 0.05)));
    v.assign(next);
    next.dispose();
  }
}

export const VOCAB = 10;
export const TOKENS = 6;

export const microTeacher: DiTConfig = Object.freeze({
  inChannels: 3,
  patchSize: 2,
  hiddenSize: 32,
  numHeads: 2,
  mlpRatio: 2,
  captionChannels: 16,
  captionLength: TOKENS,
  learnSigma: false,
  layout: 'SA*3',
  posEmbed: 'sincos',
  baseGrid: [4, 4] as const,
});

export const microStudent: DiTConfig = Object.freeze({
  ...microTeacher,
  layout: 'SA-HM-WM',
  mamba: { dState: 8, expand: 2, headdim: 16, chunkSize: 16 },
});

const stage = (o: Partial<StageConfig>): StageConfig => ({
  ...tinyPreset.stages.teacher,
  batchSize: 2,
  resolution: 8,
  warmupSteps: 2,
  checkpointEvery: 1000,
  logEvery: 1,
  emaDecay: 0.9,
  ...o,
});

/** 8×8 px (4×4 tokens), 3 blocks 32 wide, batch 2. */
export const microPreset: TrainPreset = Object.freeze({
  ...tinyPreset,
  name: 'micro',
  teacher: microTeacher,
  student: microStudent,
  textEncoder: { dim: 16, layers: 1, heads: 2, mlpRatio: 2 },
  captionTokens: TOKENS,
  stages: {
    teacher: stage({ steps: 8, lr: 1e-3, trainable: 'all' }),
    forcing: stage({ steps: 8, lr: 3e-3, trainable: 'mamba' }),
    distill: stage({ steps: 4, lr: 1e-3, trainable: 'mixers' }),
    adapt: stage({ steps: 2, lr: 1e-4, trainable: 'all', posEmbed: 'centered', lambdaPseudo: 0, lambdaMixer: 0, resolution: 12 }),
    finetune: stage({
      steps: 2,
      lr: 1e-4,
      trainable: 'all',
      posEmbed: 'centered',
      lambdaPseudo: 0,
      lambdaMixer: 0,
      resolution: [
        { size: 8, weight: 0.5 },
        { size: 12, weight: 0.5 },
      ],
    }),
  } satisfies Record<StageName, StageConfig>,
});

/**
 * Synthetic captioned images: item i (from its own seeded generator) is a coloured square on grey,
 * with random tokens. The position is one integer, so `state`/`restore` resume exactly.
 */
export const syntheticData: DataFactory<{ index: number }> = (opts) => {
  let index = opts.state?.index ?? 0;
  const source: DataSource<{ index: number }> = {
    get state() {
      return { index };
    },
    restore(s) {
      index = s.index;
    },
    next(req) {
      const R = req?.resolution ?? opts.resolution;
      const B = opts.batchSize;
      const L = opts.maxTokens;
      const img = new Float32Array(B * 3 * R * R).fill(-0.2);
      const ids = new Int32Array(B * L);
      const mask = new Uint8Array(B * L);
      for (let b = 0; b < B; b++) {
        const rng = new Rng(opts.seed * 1_000_003 + index + b);
        const s = 2 + rng.int(Math.max(1, R / 2));
        const x0 = rng.int(R - s + 1);
        const y0 = rng.int(R - s + 1);
        const col = [rng.next() * 2 - 1, rng.next() * 2 - 1, rng.next() * 2 - 1];
        for (let c = 0; c < 3; c++) {
          for (let y = y0; y < y0 + s; y++) for (let x = x0; x < x0 + s; x++) img[((b * 3 + c) * R + y) * R + x] = col[c];
        }
        const n = 2 + rng.int(L - 1);
        for (let j = 0; j < n; j++) {
          ids[b * L + j] = 1 + rng.int(VOCAB - 1);
          mask[b * L + j] = 1;
        }
      }
      index += B;
      return {
        images: tf.tensor4d(img, [B, 3, R, R]),
        tokens: tf.tensor2d(ids, [B, L], 'int32'),
        mask: tf.tensor2d(mask, [B, L], 'bool'),
      };
    },
  };
  return source;
};

export const createEncoder: TextEncoderFactory = (spec, tensors) => createCaptionEncoder(spec, tensors);

/** The `t2md.train` record of a model or checkpoint file. */
export function trainStateOf(path: string): Record<string, unknown> {
  const m = loadTrainedModel(path, createEncoder);
  try {
    return JSON.parse(m.metadata[TRAIN_KEY]!) as Record<string, unknown>;
  } finally {
    m.dispose();
  }
}
