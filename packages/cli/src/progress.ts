import { writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { currentBackend } from '@t2md/core';
import type { TrainProgress } from '@t2md/distill';
import { SingleBar } from 'cli-progress';

/**
 * Progress of long commands, always on stderr (stdout stays clean, also with --json). A terminal gets a
 * redrawn bar; anything else (CI, `2>file`, a pipe) gets plain lines: the first update, one per tenth
 * of the total, the last, and one at least every 30 s so that slow steps still show life.
 */
export interface Progress {
  /** `done` of the total; `fields` print after the count (e.g. `{loss: '0.1234'}`); `timing` overrides the measured rate. */
  update(done: number, fields?: Record<string, string>, timing?: { secondsPerUnit: number; etaSeconds: number }): void;
  stop(): void;
}

export interface ProgressOptions {
  /** What is counted, after the count: `steps`, `prompts` (default: nothing). */
  unit?: string;
  /** Force plain lines (true) or a bar (false); default: a bar only when stderr is a terminal. */
  plain?: boolean;
}

/** Seconds as a person reads them: `42 s`, `12 min`, `1.5 h`. */
export function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** One plain progress line, e.g. `eval 40/500 steps | 0.52 s/step | eta 4 min` (no newline). */
export function progressLine(
  label: string,
  done: number,
  total: number,
  o: { unit?: string; fields?: Record<string, string>; secondsPerUnit?: number; etaSeconds?: number } = {},
): string {
  const parts = [`${label} ${done}/${total}${o.unit ? ` ${o.unit}` : ''}`];
  for (const [k, v] of Object.entries(o.fields ?? {})) parts.push(`${k} ${v}`);
  const per = o.unit ? o.unit.replace(/s$/, '') : 'step';
  if (o.secondsPerUnit != null && Number.isFinite(o.secondsPerUnit)) parts.push(`${o.secondsPerUnit.toFixed(2)} s/${per}`);
  if (o.etaSeconds != null && done < total) parts.push(`eta ${fmtDuration(o.etaSeconds)}`);
  return parts.join(' | ');
}

/** A progress reporter for `total` units of `label` (see {@link Progress}). */
export function progress(label: string, total: number, opts: ProgressOptions = {}): Progress {
  const plain = opts.plain ?? !process.stderr.isTTY;
  const unit = opts.unit ?? '';
  // The rate is measured from the reporter's creation (the first step's compile time included).
  const start = { done: 0, at: performance.now() };
  let lastTenth = -1;
  let lastAt = 0;
  let bar: SingleBar | undefined;
  return {
    update(done, fields = {}, timing) {
      const now = performance.now();
      const measured = done > start.done ? (now - start.at) / 1000 / (done - start.done) : Number.NaN;
      const secondsPerUnit = timing?.secondsPerUnit ?? measured;
      const etaSeconds = timing?.etaSeconds ?? secondsPerUnit * (total - done);
      if (plain) {
        const tenth = Math.floor((10 * done) / Math.max(1, total));
        if (tenth > lastTenth || done >= total || now - lastAt > 30_000) {
          lastTenth = tenth;
          lastAt = now;
          process.stderr.write(`${progressLine(label, done, total, { unit, fields, secondsPerUnit, etaSeconds })}\n`);
        }
        return;
      }
      const extra = [
        ...Object.entries(fields).map(([k, v]) => `${k} ${v}`),
        Number.isFinite(secondsPerUnit) ? `${secondsPerUnit.toFixed(2)} s/${unit.replace(/s$/, '') || 'step'}` : '',
      ];
      const payload = { extra: extra.filter(Boolean).join(' | '), eta: done < total ? `eta ${fmtDuration(etaSeconds)}` : '' };
      if (bar == null) {
        bar = new SingleBar({
          format: `${label.padEnd(8)} {bar} {value}/{total}${unit ? ` ${unit}` : ''} | {extra} | {eta}`,
          stream: process.stderr,
          hideCursor: true,
        });
        bar.start(total, done, payload);
      } else {
        bar.update(done, payload);
      }
    },
    stop() {
      bar?.stop();
    },
  };
}

/**
 * A progress bar on stderr (stdout stays clean), one per training stage, with loss and ETA. Until the
 * first update it watches for slow WebGPU shader compilation (`backend` defaults to the one
 * initBackend started).
 */
export function trainingBar(opts: { backend?: string } = {}): { update(p: TrainProgress): void; stop(): void } {
  let current: Progress | undefined;
  let stage = '';
  // Model building and the first step compile the WebGPU shaders: say so when that takes a while.
  let firstStep: { done(report?: boolean): void } | undefined = firstStepNotice(opts.backend ?? currentBackend()?.backend ?? '');
  return {
    update(p) {
      firstStep?.done();
      firstStep = undefined;
      if (p.stage !== stage) {
        current?.stop();
        stage = p.stage;
        current = progress(p.stage, p.total, { unit: 'steps' });
      }
      const overall = p.lastEval?.scores.overall;
      const rate = p.samplesPerSecond;
      current?.update(
        p.step,
        {
          // NaN until the first metrics line reads the loss back (the trainer stops on a real NaN)
          ...(Number.isFinite(p.loss) ? { loss: p.loss.toFixed(4) } : {}),
          'samples/s': rate < 10 ? rate.toFixed(1) : String(Math.round(rate)),
          ...(overall != null ? { geneval: `${overall.toFixed(3)} @${p.lastEval!.step}` } : {}),
        },
        { secondsPerUnit: p.secondsPerStep, etaSeconds: p.etaSeconds },
      );
    },
    stop() {
      firstStep?.done(false);
      current?.stop();
    },
  };
}

/**
 * The watchdog's own thread: it waits on a shared flag and writes the notice with a direct write to
 * fd 2, because the main thread is blocked while Dawn compiles (tfjs creates pipelines synchronously),
 * so a timer there could only fire after the wait it should announce.
 */
const WATCHDOG = `
const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const flag = new Int32Array(workerData.flag);
if (Atomics.wait(flag, 0, 0, workerData.afterMs) === 'timed-out' && Atomics.compareExchange(flag, 1, 0, 1) === 0) {
  writeSync(2, workerData.message);
}`;

/**
 * Announces WebGPU shader compilation: when the first step on `backend` 'webgpu' has not finished
 * after `afterMs`, a line on stderr says what the wait is; `done()` (call it when the first step ends)
 * then says how long it took (`done(false)`: the run failed, say nothing). On other backends both do nothing.
 */
export function firstStepNotice(backend: string, afterMs = 1000): { done(report?: boolean): void } {
  if (backend !== 'webgpu') return { done() {} };
  const t0 = performance.now();
  const flag = new Int32Array(new SharedArrayBuffer(8));
  const message = 't2md: compiling WebGPU shaders for the first step (once per run; a software adapter can take a minute)…\n';
  const worker = new Worker(WATCHDOG, { eval: true, workerData: { flag: flag.buffer, afterMs, message } });
  worker.unref();
  let finished = false;
  return {
    done(report = true) {
      if (finished) return;
      finished = true;
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      // compareExchange: either the watchdog already wrote its notice (1), or it never will.
      if (Atomics.compareExchange(flag, 1, 0, 2) === 1 && report) {
        writeSync(2, `t2md: shaders compiled; the first step took ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
      }
    },
  };
}

/** An AbortSignal fired by the first Ctrl-C (SIGINT) or SIGTERM; a second Ctrl-C exits at once. */
/** A second signal this soon after the first is the same interruption delivered twice, not a second Ctrl-C. */
export const DOUBLE_SIGNAL_MS = 1000;

/**
 * An AbortSignal fired by the first Ctrl-C (SIGINT) or SIGTERM: the run finishes its step and saves.
 * `timeout -s INT` and a terminal both signal the whole process group, so one interruption can arrive
 * twice: a second signal within DOUBLE_SIGNAL_MS of the first, or any before the save has started, is
 * ignored. Only a later Ctrl-C while the save is under way quits at once (without it). `saving()` is
 * the run's report that the save began (the trainer's `onStopping`).
 */
export function interruptSignal(now: () => number = () => performance.now()): {
  signal: AbortSignal;
  saving(): void;
  dispose(): void;
} {
  const ctl = new AbortController();
  let first = 0;
  let saveStarted = false;
  const onSignal = () => {
    if (!ctl.signal.aborted) {
      first = now();
      process.stderr.write(
        '\nt2md: interrupted; finishing this step and saving a checkpoint (Ctrl-C again during the save quits without it)\n',
      );
      ctl.abort();
      return;
    }
    if (now() - first < DOUBLE_SIGNAL_MS) return; // the same interruption, delivered to the group
    if (!saveStarted) {
      process.stderr.write('t2md: still finishing the step; the checkpoint is saved next\n');
      return;
    }
    process.stderr.write('t2md: quitting without the checkpoint\n');
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: ctl.signal,
    saving() {
      saveStarted = true;
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
