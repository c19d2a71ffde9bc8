/**
 * Learning-rate schedule: linear warm-up from lr/warmupSteps to lr, then constant or a cosine decay to
 * minLr at totalSteps. Pure arithmetic on the step number, so a resumed run gets the same rates.
 */
import { assertInt, assertOneOf, check } from '@t2md/core';

export interface LrSchedule {
  /** Peak learning rate. */
  readonly lr: number;
  /** Steps of linear warm-up (default 0). */
  readonly warmupSteps?: number;
  /** After warm-up: `'constant'` (default) or `'cosine'` down to minLr at totalSteps. */
  readonly decay?: 'constant' | 'cosine';
  /** The run's length (needed by `'cosine'`). */
  readonly totalSteps?: number;
  /** Floor of the cosine decay (default 0). */
  readonly minLr?: number;
}

/** The learning rate of 0-based optimiser step `step` (step 0 uses lr / warmupSteps). */
export function learningRate(step: number, s: LrSchedule): number {
  assertInt('step', step, 0);
  check(Number.isFinite(s.lr) && s.lr >= 0, () => `lr must be a finite number >= 0, got ${String(s.lr)}.`);
  const warm = s.warmupSteps ?? 0;
  assertInt('warmupSteps', warm, 0);
  const decay = s.decay ?? 'constant';
  assertOneOf('decay', decay, ['constant', 'cosine']);
  if (step < warm) return (s.lr * (step + 1)) / warm;
  if (decay === 'constant') return s.lr;
  const total = s.totalSteps;
  assertInt('totalSteps', total, 1);
  const minLr = s.minLr ?? 0;
  const span = Math.max(1, total - warm);
  const progress = Math.min(1, (step - warm) / span);
  return minLr + 0.5 * (s.lr - minLr) * (1 + Math.cos(Math.PI * progress));
}
