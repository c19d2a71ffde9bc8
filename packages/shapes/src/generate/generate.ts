import { check, InputError } from '@t2md/core';
import { captionedDenoiser, type DiT } from '@t2md/dit';
import { type PredictionType, type SamplerName, sample } from '@t2md/sampler';
import * as tf from '@tensorflow/tfjs-core';
import { tokenizeToTensors } from '../world/tokenizer.js';

/** A caption encoder as the shipped models carry it: `encode(tokens, mask) → [B, Lc, Dc]`. */
export interface CaptionEncoderLike {
  encode(tokens: tf.Tensor, mask: tf.Tensor): tf.Tensor;
}

export interface GenerateOptions {
  /** The denoiser: a DiT teacher or T2MD student trained on the shapes world. */
  model: DiT;
  encoder: CaptionEncoderLike;
  /**
   * What the model outputs: a loaded model file's `prediction` (`epsilon` for PixArt-style files, `v`
   * for `t2md train --prediction v`). Required, not defaulted: a v model sampled as epsilon draws noise.
   */
  prediction: PredictionType;
  /** One prompt (drawn `count` times), or one prompt per image: a batch of different captions. */
  prompt: string | readonly string[];
  /** Images to draw for a single prompt (default 1); with a list of prompts, one image each. */
  count?: number;
  /** Sampling steps (default 20). */
  steps?: number;
  sampler?: SamplerName;
  /** Classifier-free guidance scale (default 4.5, PixArt's); 1 turns guidance off. */
  cfg?: number;
  seed?: number;
  /** Image side in pixels (default: the model's base resolution); a multiple of the patch size. */
  size?: number;
  /** Called after every step with the current clean-image estimate `[count, 3, H, W]` (valid during the call). */
  onStep?: (info: { step: number; total: number; ms: number; x0: tf.Tensor }) => void | Promise<void>;
  signal?: AbortSignal;
}

export interface GenerateResult {
  /** `[count, 3, size, size]` in [-1, 1]; the caller disposes it. */
  images: tf.Tensor;
  /** Milliseconds per sampling step (median over the run, each step synchronised by reading its estimate). */
  msPerStep: number;
}

/**
 * Prompt → images with a shapes-world model: tokenize, encode the caption, and sample with guidance
 * batched as one model call per step (conditional rows first, then the model's null caption).
 */
export async function generate(opts: GenerateOptions): Promise<GenerateResult> {
  const { model, encoder } = opts;
  const many = Array.isArray(opts.prompt);
  if (many) {
    const n = (opts.prompt as readonly string[]).length;
    check(n >= 1 && n <= 256, `prompt lists hold 1 to 256 prompts, got ${n}; split longer lists into several calls.`);
    check(
      opts.count == null || opts.count === n,
      `count (${opts.count}) must be left out with a list of ${n} prompts: each prompt draws one image.`,
    );
  }
  const count = many ? (opts.prompt as readonly string[]).length : (opts.count ?? 1);
  const steps = opts.steps ?? 20;
  const cfg = opts.cfg ?? 4.5;
  const patch = model.config.patchSize;
  const size = opts.size ?? defaultSize(model);
  if (!many) check(Number.isInteger(count) && count >= 1 && count <= 64, `count must be an integer in [1, 64], got ${count}.`);
  check(Number.isFinite(cfg) && cfg >= 0, `cfg must be a number ≥ 0, got ${cfg}.`);
  check(Number.isInteger(size) && size > 0, `size must be a positive integer, got ${size}.`);
  if (size % patch !== 0) {
    throw new InputError(
      `size ${size} is not a multiple of the model's patch size ${patch}; pick e.g. ${Math.max(patch, Math.round(size / patch) * patch)}.`,
    );
  }
  const guided = cfg !== 1;
  const sampler = opts.sampler ?? 'dpmpp-2m';
  const { tokens, mask } = tokenizeToTensors(many ? [...(opts.prompt as readonly string[])] : Array(count).fill(opts.prompt));
  const feats = tf.tidy(() => encoder.encode(tokens, mask)); // [count, Lc, Dc]
  const denoiser = captionedDenoiser(model, feats, mask, guided);
  tf.dispose([tokens, mask, feats]);
  const times: number[] = [];
  let last = performance.now();
  try {
    const images = await sample({
      model: denoiser.model,
      sampler,
      steps,
      shape: [count, model.config.inChannels, size, size],
      seed: opts.seed ?? 0,
      prediction: opts.prediction,
      guidance: guided ? { scale: cfg } : undefined,
      // The shapes world is pixel space in [-1, 1]: DDPM and DDIM clip their clean-sample estimate to it
      // (diffusers' clip_sample), which keeps an early, badly amplified estimate from running away.
      clipSample: sampler === 'ddpm' || sampler === 'ddim' ? 1 : undefined,
      signal: opts.signal,
      onStep: async ({ step, total, x0 }) => {
        await x0.data(); // synchronise so the time is the step's, not the queue's
        const now = performance.now();
        times.push(now - last);
        last = now;
        await opts.onStep?.({ step, total, ms: times[times.length - 1], x0 });
      },
    });
    const sorted = [...times].sort((a, b) => a - b);
    return { images, msPerStep: sorted[Math.floor(sorted.length / 2)] ?? 0 };
  } finally {
    denoiser.dispose();
  }
}

/** The side the model was trained at: its base grid times the patch, else 32 px. */
function defaultSize(model: DiT): number {
  const g = (model.config as { baseGrid?: number | readonly number[] }).baseGrid;
  const side = Array.isArray(g) ? g[0] : typeof g === 'number' ? g : undefined;
  return side != null ? side * model.config.patchSize : 32;
}
