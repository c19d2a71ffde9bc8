import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '@t2md/core';
import { FALLBACK_STEPS, placeholderNotice } from '@t2md/shapes';
import { loadModel, shippedModelPath, shippedSteps } from '../models.js';
import { checkOutDir } from '../out-path.js';
import { encodeGridPng, type ImageCHW, writeFileAtomic } from '../png.js';
import { drawImages } from './sample.js';
import { distillCommand, trainCommand } from './train.js';

export interface DemoOptions {
  out: string;
}

/** One prompt from each of four categories: colors, counting, position, color attribution. */
const PROMPTS = ['a red circle', 'two blue squares', 'a yellow triangle left of a green circle', 'a purple square and an orange circle'];

/** `DIR/teacher-vs-student.png`: one image per prompt, the teacher's row above the student's (the README's figure). */
export const COMPARE_FILE = 'teacher-vs-student.png';
/** About how many pixels wide each image of COMPARE_FILE is drawn (nearest-neighbour upscaling). */
const FIGURE_SIDE = 128;

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
  // the shipped models sample with their measured step counts (models/sampling.json); models trained here with 20
  let steps = { teacher: FALLBACK_STEPS, student: FALLBACK_STEPS };
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
  } else {
    const chosen = { teacher: (await shippedSteps('teacher'))!, student: (await shippedSteps('student'))! };
    for (const [name, s] of Object.entries(chosen)) process.stdout.write(`${name}: ${s.note}\n`);
    steps = { teacher: chosen.teacher.steps, student: chosen.student.steps };
  }
  const rows: ImageCHW[] = [];
  const metadata: Record<string, string>[] = [];
  for (const [name, model] of [
    ['teacher', teacher],
    ['student', student],
  ] as const) {
    const got = await sampleAll(name, model, steps[name], out, info.backend);
    rows.push(...got.firsts);
    metadata.push(got.metadata);
  }
  // shown at about 128 px an image (the README's figure): a 32-px sample is too small to judge at 1×
  const scale = Math.max(1, Math.round(FIGURE_SIDE / rows[0]!.width));
  writeFileAtomic(join(out, COMPARE_FILE), encodeGridPng(rows, 2, PROMPTS.length, scale));
  process.stdout.write(`teacher (top) and student (bottom), one image per prompt: ${join(out, COMPARE_FILE)}\n`);
  process.stdout.write(`done: PNG grids are in ${out} (backend ${info.backend})\n`);
  // the models' own metadata says whether they are placeholders (trained with the tiny preset)
  const notice = placeholderNotice(...metadata);
  if (notice) process.stdout.write(`note: ${notice}\n`);
}

/** Images per prompt and model in the demo's grids. */
const PER_PROMPT = 4;

/**
 * Samples `PER_PROMPT` images of each prompt from `path` (`steps` DPM-Solver++ steps, cfg 4.5, seed = the
 * prompt's index), the model loaded once; writes `DIR/<name>-<i>.png` per prompt and returns each
 * prompt's first image (the comparison figure's row) with the model file's metadata. One batch per
 * prompt: on wasm a batch of 16 measured no cheaper per image-step than a batch of 4 (32-px teacher,
 * 2-core CPU: 105–109 against 97–104 ms).
 */
async function sampleAll(
  name: string,
  path: string,
  steps: number,
  out: string,
  backend: string,
): Promise<{ firsts: ImageCHW[]; metadata: Record<string, string> }> {
  const trained = loadModel(path);
  try {
    const firsts: ImageCHW[] = [];
    for (const [i, prompt] of PROMPTS.entries()) {
      process.stdout.write(`${name}: "${prompt}"\n`);
      const o = { prompt, count: PER_PROMPT, steps, sampler: 'dpmpp-2m', cfg: 4.5, seed: i } as const;
      const { images, msPerStep, seconds } = await drawImages(trained, o, backend);
      const file = join(out, `${name}-${i}.png`);
      writeFileAtomic(file, encodeGridPng(images));
      process.stdout.write(
        `wrote ${file} (${images.length} images), ${steps} steps at ${msPerStep.toFixed(1)} ms/step on ${backend}; ${seconds.toFixed(1)} s\n`,
      );
      firsts.push(images[0]!);
    }
    return { firsts, metadata: trained.metadata };
  } finally {
    trained.dispose();
  }
}
