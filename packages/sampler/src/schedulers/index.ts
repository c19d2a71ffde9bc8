import { assertOneOf } from '@t2md/core';
import { SAMPLER_NAMES, type SamplerName, type Scheduler } from '../scheduler.js';
import { ddim } from './ddim.js';
import { ddpm } from './ddpm.js';
import { dpmpp2m } from './dpmpp-2m.js';
import { euler } from './euler.js';

export { ddim, ddpm, dpmpp2m, euler };

/** Every scheduler by its sampler name. */
export const SCHEDULERS: Readonly<Record<SamplerName, Scheduler>> = Object.freeze({ ddpm, ddim, 'dpmpp-2m': dpmpp2m, euler });

/** The scheduler for `name`; throws InputError naming the choices for an unknown name. */
export function getScheduler(name: unknown): Scheduler {
  assertOneOf('sampler', name, SAMPLER_NAMES);
  return SCHEDULERS[name];
}
