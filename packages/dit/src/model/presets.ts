import type { DiTConfig } from './config.js';

/**
 * PixArt-α XL/2, the paper's teacher: 28 SA blocks, 1152 wide, 16 heads (head dim 72), patch 2 on a
 * 4-channel SD-VAE latent, T5-XXL captions (4096 wide, 120 tokens), learned sigma. baseGrid is the
 * 512-px model's 32×32 token grid (latent 64×64).
 */
export const pixartXL2: DiTConfig = Object.freeze({
  inChannels: 4,
  patchSize: 2,
  hiddenSize: 1152,
  numHeads: 16,
  mlpRatio: 4,
  captionChannels: 4096,
  captionLength: 120,
  learnSigma: true,
  layout: 'SA*28',
  posEmbed: 'sincos',
  baseGrid: Object.freeze([32, 32]) as readonly [number, number],
});

/**
 * The paper's hybrid student (T2MD, 0.7B): PixArt-XL/2 with SA at blocks 1, 8, 15, 22 (1-based) and
 * bidirectional Mamba-2 (d_state 256, expand 2, head dim 64) elsewhere, alternating height-first and
 * width-first scans (24 of 28 mixers, 86%).
 */
export const t2mdXL2: DiTConfig = Object.freeze({
  ...pixartXL2,
  layout: 'SA-(HM-WM)x3-SA-(HM-WM)x3-SA-(HM-WM)x3-SA-(HM-WM)x3',
  mamba: Object.freeze({ dState: 256, expand: 2, headdim: 64 }),
});

/**
 * Teacher for the shapes world: RGB images in [-1, 1] directly (no VAE), 32×32 px at patch 2 (a 16×16
 * grid, 256 tokens), 8 SA blocks 128 wide. Caption width and length match @t2md/shapes's text encoder by
 * default; override them with `{...shapesTeacher, captionChannels}` when yours differs.
 */
export const shapesTeacher: DiTConfig = Object.freeze({
  inChannels: 3,
  patchSize: 2,
  hiddenSize: 128,
  numHeads: 4,
  mlpRatio: 4,
  captionChannels: 128,
  captionLength: 24,
  learnSigma: false,
  layout: 'SA*8',
  posEmbed: 'sincos',
  baseGrid: Object.freeze([16, 16]) as readonly [number, number],
});

/**
 * Student for the shapes world: the teacher with SA at blocks 1 and 5 (1-based, evenly spaced) and
 * bidirectional Mamba-2 in the other 6 (75%), HM and WM alternating.
 */
export const shapesStudent: DiTConfig = Object.freeze({
  ...shapesTeacher,
  layout: 'SA-HM-WM-HM-SA-WM-HM-WM',
  mamba: Object.freeze({ dState: 64, expand: 2, headdim: 32, chunkSize: 64 }),
});

/** A teacher small enough for tests on a CPU: 16×16 px RGB at patch 2 (64 tokens), 4 SA blocks 64 wide. */
export const tinyTeacher: DiTConfig = Object.freeze({
  inChannels: 3,
  patchSize: 2,
  hiddenSize: 64,
  numHeads: 4,
  mlpRatio: 4,
  captionChannels: 32,
  captionLength: 8,
  learnSigma: false,
  layout: 'SA*4',
  posEmbed: 'sincos',
  baseGrid: Object.freeze([8, 8]) as readonly [number, number],
});

/** The tiny student: SA first, then Mamba in 3 of 4 blocks (75%). */
export const tinyStudent: DiTConfig = Object.freeze({
  ...tinyTeacher,
  layout: 'SA-HM-WM-HM',
  mamba: Object.freeze({ dState: 16, expand: 2, headdim: 16, chunkSize: 16 }),
});

/** Every preset by name. */
export const ditPresets: Readonly<Record<string, DiTConfig>> = Object.freeze({
  pixartXL2,
  t2mdXL2,
  shapesTeacher,
  shapesStudent,
  tinyTeacher,
  tinyStudent,
});
