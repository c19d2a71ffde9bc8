/**
 * Noise schedules (the training-time forward process) and the inference timestep spacing.
 *
 * A schedule is data: `{kind, betaStart, betaEnd, trainSteps}`. Everything is computed in float64 on
 * the host (a few thousand numbers); the per-step tensor maths runs in float32.
 */
import { assertInt, assertOneOf, check } from '@t2md/core';

/** The schedule kinds; `scaled-linear` and `cosine` are diffusers' `scaled_linear` and `squaredcos_cap_v2`. */
export const SCHEDULE_KINDS = ['linear', 'scaled-linear', 'cosine'] as const;
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

/** diffusers' spellings, accepted as aliases. */
const ALIASES: Record<string, ScheduleKind> = { scaled_linear: 'scaled-linear', squaredcos_cap_v2: 'cosine' };

/** A training noise schedule. `betaStart` and `betaEnd` are ignored by `cosine`. */
export interface ScheduleConfig {
  readonly kind: ScheduleKind;
  readonly betaStart: number;
  readonly betaEnd: number;
  readonly trainSteps: number;
}

/** The default: DDPM's linear schedule over 1000 training steps (PixArt's too). */
export const DEFAULT_SCHEDULE: ScheduleConfig = Object.freeze({ kind: 'linear', betaStart: 1e-4, betaEnd: 0.02, trainSteps: 1000 });

/** Fills in defaults (from {@link DEFAULT_SCHEDULE}) and validates; throws InputError on bad fields. */
export function resolveSchedule(schedule: Partial<ScheduleConfig> | undefined = {}): ScheduleConfig {
  check(
    schedule != null && typeof schedule === 'object',
    `schedule must be an object like {kind: 'linear', trainSteps: 1000}, got ${String(schedule)}.`,
  );
  const rawKind = (schedule.kind as string | undefined) ?? DEFAULT_SCHEDULE.kind;
  const kind = ALIASES[rawKind] ?? rawKind;
  assertOneOf('schedule.kind', kind, SCHEDULE_KINDS);
  const trainSteps = schedule.trainSteps ?? DEFAULT_SCHEDULE.trainSteps;
  assertInt('schedule.trainSteps', trainSteps, 2, 100_000);
  const betaStart = schedule.betaStart ?? DEFAULT_SCHEDULE.betaStart;
  const betaEnd = schedule.betaEnd ?? DEFAULT_SCHEDULE.betaEnd;
  for (const [name, b] of [
    ['schedule.betaStart', betaStart],
    ['schedule.betaEnd', betaEnd],
  ] as const) {
    check(typeof b === 'number' && b > 0 && b < 1, `${name} must be a number in (0, 1), got ${String(b)}.`);
  }
  check(betaStart <= betaEnd, `schedule.betaStart (${betaStart}) must not exceed schedule.betaEnd (${betaEnd}).`);
  return Object.freeze({ kind, betaStart, betaEnd, trainSteps });
}

/** The forward-process betas, `[trainSteps]`, as diffusers computes them for each kind. */
export function betas(schedule?: Partial<ScheduleConfig>): Float64Array {
  const { kind, betaStart, betaEnd, trainSteps: T } = resolveSchedule(schedule);
  const out = new Float64Array(T);
  if (kind === 'linear') {
    for (let i = 0; i < T; i++) out[i] = betaStart + ((betaEnd - betaStart) * i) / (T - 1);
  } else if (kind === 'scaled-linear') {
    // Latent diffusion's schedule: linear in sqrt(beta).
    const a = Math.sqrt(betaStart);
    const b = Math.sqrt(betaEnd);
    for (let i = 0; i < T; i++) out[i] = (a + ((b - a) * i) / (T - 1)) ** 2;
  } else {
    // Improved DDPM (Nichol & Dhariwal 2021, eq. 17): alpha-bar(t) = cos^2((t + s)/(1 + s) * pi/2),
    // s = 0.008, betas capped at 0.999 to avoid a singularity at t = T.
    const abar = (u: number) => Math.cos(((u + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    for (let i = 0; i < T; i++) out[i] = Math.min(1 - abar((i + 1) / T) / abar(i / T), 0.999);
  }
  return out;
}

/** alpha-bar_t = prod_{s <= t} (1 - beta_s), `[trainSteps]`, decreasing from about 1 towards 0. */
export function alphasCumprod(schedule?: Partial<ScheduleConfig>): Float64Array {
  const b = betas(schedule);
  const out = new Float64Array(b.length);
  let acc = 1;
  for (let i = 0; i < b.length; i++) {
    acc *= 1 - b[i];
    out[i] = acc;
  }
  return out;
}

/** numpy's `round` (half to even), so spacings match diffusers' exactly. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The inference timesteps with "trailing" spacing (Lin et al. 2024, "Common Diffusion Noise Schedules
 * and Sample Steps are Flawed", table 2): `round(arange(T, 0, -T/steps)) - 1`, largest first. The first
 * model call is therefore always at `t = T - 1` (the most noise the model was trained on) and the last
 * at `round(T/steps) - 1`; diffusers' "leading" spacing would start at `T - T/steps` and never show the
 * model its noisiest timestep when steps < T. With steps = T it is simply T-1, ..., 0.
 */
export function trailingTimesteps(trainSteps: number, steps: number): number[] {
  assertInt('trainSteps', trainSteps, 2);
  check(
    typeof steps === 'number' && Number.isInteger(steps) && steps >= 1 && steps <= trainSteps,
    () => `steps must be an integer in [1, ${trainSteps}] (the schedule's trainSteps), got ${String(steps)}.`,
  );
  const ratio = trainSteps / steps;
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push(roundHalfEven(trainSteps - i * ratio) - 1);
  return out;
}
