import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '@t2md/core';
import { generate, placeholderNotice } from '@t2md/shapes';
import { loadModel, shippedModelPath } from '../models.js';
import { checkOutDir } from '../out-path.js';
import { encodeGridPng, type ImageCHW, readImages, writeFileAtomic } from '../png.js';
import { sampleCommand } from './sample.js';
import { distillCommand, trainCommand } from './train.js';

export interface DemoOptions {
  out: string;
}

/** One prompt from each of four categories: colors, counting, position, color attribution. */
const PROMPTS = ['a red circle', 'two blue squares', 'a yellow triangle left of a green circle', 'a purple square and an orange circle'];

/** `DIR/teacher-vs-student.png`: one image per prompt, the teacher's row above the student's (the README's figure). */
export const COMPARE_FILE = 'teacher-vs-student.png';

/**
 * `t2md demo`, the main job (`npm run demo`): samples the shipped teacher and student for a few prompts.
 * Where this install ships no models, it runs the whole pipeline on the `tiny` preset first — train the
 * teacher, distill the student (forcing → distill → adapt → finetune) — then samples from both.
 */
export async function demoCommand(opts: DemoOptions): Promise<void> {
  const out = checkOutDir('--out', opts.out);
  mkdirSync(out, { recursive: true });
  const info = await initBackend();
  process.stdout.write(`t2md demo: backend ${info.backend}${info.adapter ? ` (${info.adapter.description})` : ''}; writing to ${out}\n`);
  let teacher = shippedModelPath('teacher');
  let student = shippedModelPath('student');
  if (teacher == null || student == null) {
    process.stdout.write(
      'no shipped models in this install: training a tiny teacher and distilling a student first (a few minutes on a CPU)\n',
    );
    const tdir = join(out, 'teacher');
    const sdir = join(out, 'student');
    await trainCommand({ out: tdir, preset: 'tiny', resume: existsSync(join(tdir, 'latest.safetensors')) });
    if (process.exitCode) return;
    await distillCommand({
      out: sdir,
      teacher: join(tdir, 'model.safetensors'),
      preset: 'tiny',
      stage: 'all',
      resume: existsSync(join(sdir, 'latest.safetensors')),
    });
    if (process.exitCode) return;
    teacher = join(tdir, 'model.safetensors');
    student = join(sdir, 'model.safetensors');
  }
  for (const [name, model] of [
    ['teacher', teacher],
    ['student', student],
  ] as const) {
    for (const [i, prompt] of PROMPTS.entries()) {
      process.stdout.write(`${name}: "${prompt}"\n`);
      await sampleCommand(prompt, {
        model,
        steps: 20,
        sampler: 'dpmpp-2m',
        cfg: 4.5,
        seed: i,
        count: 4,
        out: join(out, `${name}-${i}.png`),
      });
    }
  }
  const rows: ImageCHW[] = [];
  const metadata: Record<string, string>[] = [];
  for (const model of [teacher, student]) {
    const got = await onePerPrompt(model);
    rows.push(...got.images);
    metadata.push(got.metadata);
  }
  writeFileAtomic(join(out, COMPARE_FILE), encodeGridPng(rows, 2, PROMPTS.length));
  process.stdout.write(`teacher (top) and student (bottom), one image per prompt: ${join(out, COMPARE_FILE)}\n`);
  process.stdout.write(`done: PNG grids are in ${out} (backend ${info.backend})\n`);
  // the models' own metadata says whether they are placeholders (trained with the tiny preset)
  const notice = placeholderNotice(...metadata);
  if (notice) process.stdout.write(`note: ${notice}\n`);
}

/**
 * One image per prompt from `path` (20 DPM-Solver++ steps, cfg 4.5, seed 0, all prompts in one batch),
 * and the model file's metadata.
 */
async function onePerPrompt(path: string): Promise<{ images: ImageCHW[]; metadata: Record<string, string> }> {
  const trained = loadModel(path);
  try {
    const { images } = await generate({
      model: trained.model,
      encoder: trained.encoder,
      prompt: PROMPTS,
      steps: 20,
      sampler: 'dpmpp-2m',
      cfg: 4.5,
      seed: 0,
    });
    return { images: await readImages(images), metadata: trained.metadata };
  } finally {
    trained.dispose();
  }
}
