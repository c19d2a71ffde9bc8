import { planDistill, type StageConfig } from '@t2md/distill';
import { createCaptionEncoder, createDataset, VOCAB_SIZE } from '@t2md/shapes';
import { vi } from 'vitest';
import { type DistillCliOptions, distillRunOptions } from '../src/commands/train.js';
import { main } from '../src/main.js';
import { shippedModelPath } from '../src/models.js';

/**
 * `t2md ...args` in this process, through `main` (no build needed, and the refusals come before any
 * backend starts): its exit code and what it wrote on stdout and stderr.
 */
export async function t2mdInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const written = { stdout: '', stderr: '' };
  const spies = (['stdout', 'stderr'] as const).map((s) =>
    vi.spyOn(process[s], 'write').mockImplementation((chunk: string | Uint8Array) => {
      written[s] += String(chunk);
      return true;
    }),
  );
  try {
    return { code: await main(['node', 't2md', ...args]), ...written };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

/**
 * The stages that `t2md distill --stage all` plans for the shipped teacher's student with `flags`
 * (the CLI's options, as `distillRunOptions` maps them). Reads the file's header only: no weights.
 */
export function plannedStages(out: string, flags: Partial<DistillCliOptions>): { name: string; cfg: StageConfig }[] {
  const teacher = shippedModelPath('teacher')!;
  return planDistill({
    out,
    teacher,
    stage: 'all',
    data: createDataset,
    createEncoder: createCaptionEncoder,
    vocabSize: VOCAB_SIZE,
    ...distillRunOptions({ out, teacher, stage: 'all', ...flags }),
  }).stages;
}
