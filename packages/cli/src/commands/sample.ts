import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type BackendName, initBackend } from '@t2md/core';
import type { PosEmbedKind, TrainedModel } from '@t2md/dit';
import type { SamplerName } from '@t2md/sampler';
import { FALLBACK_STEPS, generate, parseCaption } from '@t2md/shapes';
import { loadModel, shippedSteps } from '../models.js';
import { checkOutFile } from '../out-path.js';
import { encodeGridPng, type ImageCHW, readImages, writeFileAtomic } from '../png.js';
import { firstStepNotice, progress } from '../progress.js';

export interface SampleOptions {
  model: string;
  /** Absent: a shipped model's measured step count (`shippedSteps`), else `FALLBACK_STEPS` (20). */
  steps?: number;
  sampler: SamplerName;
  cfg: number;
  seed: number;
  size?: number;
  count: number;
  /** Each pixel drawn scale × scale in the PNG (nearest neighbour; default 1, the samples' own pixels). */
  scale?: number;
  out: string;
  /** Replaces the model file's positional embedding (`--pos-embed`). */
  posEmbed?: PosEmbedKind;
  backend?: 'auto' | BackendName;
}

/** `t2md sample PROMPT`: prompt → PNG (a grid when --count > 1), printing the time per step. */
export async function sampleCommand(prompt: string, opts: SampleOptions): Promise<void> {
  parseCaption(prompt); // a prompt outside the grammar is an InputError before anything loads
  const out = checkOutFile('--out', opts.out); // so is a path the PNG cannot be written to
  const info = await initBackend({ backend: opts.backend ?? 'auto' });
  const trained = loadModel(opts.model, { posEmbed: opts.posEmbed });
  // no --steps: a shipped model samples with its measured count (the DPM-Solver++ table), anything else with 20
  const table = opts.steps == null && opts.sampler === 'dpmpp-2m' ? await shippedSteps(opts.model) : undefined;
  const steps = opts.steps ?? table?.steps ?? FALLBACK_STEPS;
  try {
    const { images: imgs, msPerStep, seconds } = await drawImages(trained, { ...opts, steps, prompt }, info.backend);
    const n = imgs.length;
    const { height: h, width: w } = imgs[0]!;
    const scale = opts.scale ?? 1;
    const png = encodeGridPng(imgs, 2, Math.ceil(Math.sqrt(n)), scale);
    mkdirSync(dirname(out), { recursive: true });
    writeFileAtomic(out, png);
    process.stdout.write(
      `wrote ${out} (${n} image${n > 1 ? 's' : ''}, ${w}×${h}${scale > 1 ? `, shown ${scale}× larger` : ''}) from ${trained.source}\n` +
        `${steps} ${opts.sampler} steps at ${msPerStep.toFixed(1)} ms/step on ${info.backend}${info.adapter ? ` (${info.adapter.description})` : ''}; ${seconds.toFixed(1)} s in all\n`,
    );
    if (table) process.stdout.write(`${table.note}\n`);
  } finally {
    trained.dispose();
  }
}

/** What `drawImages` samples: one prompt `count` times, at `size` px (the model's own when omitted). */
export interface DrawOptions {
  prompt: string;
  count: number;
  steps: number;
  sampler: SamplerName;
  cfg: number;
  seed: number;
  size?: number;
}

/**
 * Samples `o.count` images of `o.prompt` from a loaded model with a progress bar (and the first-step
 * notice of slow backends), and reads them back: the images, ms per step, and seconds in all.
 */
export async function drawImages(
  trained: TrainedModel,
  o: DrawOptions,
  backend: string,
): Promise<{ images: ImageCHW[]; msPerStep: number; seconds: number }> {
  const bar = progress('sample', o.steps, { unit: 'steps' });
  const firstStep = firstStepNotice(backend);
  try {
    const t0 = performance.now();
    const { images, msPerStep } = await generate({
      model: trained.model,
      encoder: trained.encoder,
      prediction: trained.prediction,
      prompt: o.prompt,
      count: o.count,
      steps: o.steps,
      sampler: o.sampler,
      cfg: o.cfg,
      seed: o.seed,
      size: o.size,
      onStep: ({ step }) => {
        firstStep.done();
        bar.update(step);
      },
    });
    bar.stop();
    const read = await readImages(images);
    return { images: read, msPerStep, seconds: (performance.now() - t0) / 1000 };
  } finally {
    firstStep.done(false);
    bar.stop();
  }
}
