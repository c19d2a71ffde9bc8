/**
 * @t2md/sampler: noise schedules, DDPM / DDIM / DPM-Solver++(2M) / Euler schedulers with explicit
 * state, and `sample`, which runs one over any model function with classifier-free guidance.
 */

export type { PredictionType } from './prediction.js';
export { convertPrediction, PREDICTION_TYPES, predictionsFrom, resolvePrediction } from './prediction.js';
export type { GuidanceOptions, ModelCallInfo, ModelFn, SampleOptions, StepInfo } from './sample.js';
export { sample } from './sample.js';
export type { ScheduleConfig, ScheduleKind } from './schedule.js';
export { alphasCumprod, betas, DEFAULT_SCHEDULE, resolveSchedule, SCHEDULE_KINDS, trailingTimesteps } from './schedule.js';
export type { SamplerName, Scheduler, SchedulerConfig, SchedulerState, StepResult } from './scheduler.js';
export { disposeState, SAMPLER_NAMES } from './scheduler.js';
export { ddim, ddpm, dpmpp2m, euler, getScheduler, SCHEDULERS } from './schedulers/index.js';
