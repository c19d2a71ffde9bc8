import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type BackendName, initBackend } from '@t2md/core';
import type { SamplerName } from '@t2md/sampler';
import { generate, parseCaption } from '@t2md/shapes';
import { loadModel } from '../models.js';
import { checkOutFile } from '../out-path.js';
import { encodeGridPng, readImages, writeFileAtomic } from '../png.js';
import { firstStepNotice, progress } from '../progress.js';

export interface SampleOptions {
  model: string;
  steps: number;
  sampler: SamplerName;
  cfg: number;
  seed: number;
  size?: number;
  count: number;
  out: string;
  backend?: 'auto' | BackendName;
}

/** `t2md sample PROMPT`: prompt → PNG (a grid when --count > 1), printing the time per step. */
export async function sampleCommand(prompt: string, opts: SampleOptions): Promise<void> {
  parseCaption(prompt); // a prompt outside the grammar is an InputError before anything loads
  const out = checkOutFile('--out', opts.out); // so is a path the PNG cannot be written to
  const info = await initBackend({ backend: opts.backend ?? 'auto' });
  const trained = loadModel(opts.model);
  const bar = progress('sample', opts.steps, { unit: 'steps' });
  const firstStep = firstStepNotice(info.backend);
  try {
    const t0 = performance.now();
    const { images, msPerStep } = await generate({
      model: trained.model,
      encoder: trained.encoder,
      prompt,
      count: opts.count,
      steps: opts.steps,
      sampler: opts.sampler,
      cfg: opts.cfg,
      seed: opts.seed,
      size: opts.size,
      onStep: ({ step }) => {
        firstStep.done();
        bar.update(step);
      },
    });
    bar.stop();
    const imgs = await readImages(images);
    const n = imgs.length;
    const { height: h, width: w } = imgs[0]!;
    const png = encodeGridPng(imgs);
    mkdirSync(dirname(out), { recursive: true });
    writeFileAtomic(out, png);
    const total = (performance.now() - t0) / 1000;
    process.stdout.write(
      `wrote ${out} (${n} image${n > 1 ? 's' : ''}, ${w}×${h}) from ${trained.source}\n` +
        `${opts.steps} ${opts.sampler} steps at ${msPerStep.toFixed(1)} ms/step on ${info.backend}${info.adapter ? ` (${info.adapter.description})` : ''}; ${total.toFixed(1)} s in all\n`,
    );
  } finally {
    firstStep.done(false);
    bar.stop();
    trained.dispose();
  }
}
