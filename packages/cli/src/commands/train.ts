import { type BackendName, initBackend } from '@t2md/core';
import { distillStudent, type TrainResult, trainTeacher } from '@t2md/distill';
import { createCaptionEncoder, createDataset, VOCAB_SIZE } from '@t2md/shapes';
import { interruptSignal, trainingBar } from '../progress.js';

export interface TrainOptions {
  out: string;
  preset?: string;
  steps?: number;
  resume?: boolean;
  backend?: 'auto' | BackendName;
}

export interface DistillCliOptions extends TrainOptions {
  teacher: string;
  stage?: 'forcing' | 'distill' | 'adapt' | 'finetune' | 'all';
}

/** The shapes world plugged into the generic trainer. */
const world = { data: createDataset, createEncoder: createCaptionEncoder, vocabSize: VOCAB_SIZE };

async function run(
  what: 'train' | 'distill',
  fn: (signal: AbortSignal, bar: ReturnType<typeof trainingBar>) => Promise<TrainResult>,
  backend?: string,
) {
  const info = await initBackend({ backend: (backend ?? 'auto') as 'auto' });
  process.stderr.write(`t2md ${what}: backend ${info.backend}${info.adapter ? ` (${info.adapter.description})` : ''}\n`);
  const bar = trainingBar();
  const interrupt = interruptSignal();
  let result: TrainResult;
  try {
    result = await fn(interrupt.signal, bar);
  } finally {
    bar.stop();
    interrupt.dispose();
  }
  if (result.aborted) {
    process.stderr.write(
      `t2md ${what}: stopped at ${result.stage} step ${result.step}; checkpoint ${result.checkpoint}; continue with --resume\n`,
    );
    process.exitCode = 130;
    return;
  }
  process.stdout.write(
    `${what} done: ${result.stage} step ${result.step}, loss ${result.loss.toFixed(4)}\n  checkpoint ${result.checkpoint}\n${result.model ? `  model      ${result.model}\n` : ''}`,
  );
}

/** `t2md train`: train the teacher DiT (and its caption encoder) on the shapes world. */
export async function trainCommand(opts: TrainOptions): Promise<void> {
  await run(
    'train',
    (signal, bar) =>
      trainTeacher({
        out: opts.out,
        preset: opts.preset,
        steps: opts.steps,
        resume: opts.resume,
        ...world,
        signal,
        onProgress: (p) => bar.update(p),
      }),
    opts.backend,
  );
}

/** `t2md distill`: teacher forcing → feature distillation → adaptation → fine-tuning of the hybrid student. */
export async function distillCommand(opts: DistillCliOptions): Promise<void> {
  await run(
    'distill',
    (signal, bar) =>
      distillStudent({
        out: opts.out,
        teacher: opts.teacher,
        preset: opts.preset,
        stage: opts.stage,
        steps: opts.steps,
        resume: opts.resume,
        ...world,
        signal,
        onProgress: (p) => bar.update(p),
      }),
    opts.backend,
  );
}
