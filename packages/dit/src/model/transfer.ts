import { fmtShape } from '@t2md/core';
import type { DiT } from './dit.js';

/**
 * T2MD's initialisation: copies into `student` every weight it shares with `teacher` (same name and
 * shape), i.e. the embedders, adaLN-single, every block's cross-attention, MLP and `scale_shift_table`,
 * the final layer, and the self-attention of the blocks that stay SA. Mamba mixers (`blocks.N.mixer.*`)
 * have no counterpart in an all-SA teacher, so they keep their fresh initialisation (the paper finds
 * initialising them from attention weights hurts). Names present in both with different shapes are
 * skipped. Returns the copied names, sorted.
 *
 * The student's variables then share the teacher's data until either is trained (tfjs tensors are
 * immutable and `assign` swaps the buffer), so nothing is copied in memory.
 */
export function transferFromTeacher(student: DiT, teacher: DiT): string[] {
  const from = teacher.weights();
  const copied: string[] = [];
  for (const [name, v] of Object.entries(student.weights())) {
    const w = from[name];
    if (w == null || fmtShape(w.shape) !== fmtShape(v.shape) || w.dtype !== v.dtype) continue;
    if (w.dataId !== v.dataId) v.assign(w); // self-assignment would free the shared buffer
    copied.push(name);
  }
  return copied.sort();
}
