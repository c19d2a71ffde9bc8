/**
 * `DIR/metrics.jsonl`: one JSON object per logged step, `{"step": n, "stage": s, "loss": x, ...}`, and
 * one per in-training evaluation, `{"step": n, "stage": s, "eval": name, ...scores}`, appended as
 * training goes. Only deterministic values go in (no wall-clock times), so a resumed run's
 * file is byte-identical to an uninterrupted one's: on resume, the lines logged after the checkpoint
 * (by a run that died before its next checkpoint) are dropped first.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { atomicWriteFile } from './atomic.js';

export interface MetricsRecord {
  step: number;
  stage?: string;
  /** The training loss (absent on the lines of an in-training evaluation, which name it in `eval`). */
  loss?: number;
  eval?: string;
  [key: string]: number | string | undefined;
}

/** Appends one line. */
export function appendMetrics(path: string, record: MetricsRecord): void {
  appendFileSync(path, `${JSON.stringify(record)}\n`);
}

/** Reads every well-formed line (a torn last line of a killed run is skipped). */
export function readMetrics(path: string): MetricsRecord[] {
  if (!existsSync(path)) return [];
  const out: MetricsRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r = JSON.parse(line) as MetricsRecord;
      if (r != null && typeof r === 'object' && typeof r.step === 'number') out.push(r);
    } catch {
      // a line cut by a kill mid-append
    }
  }
  return out;
}

/**
 * Keeps only the lines for which `keep` holds (e.g. those at or before the checkpoint's step),
 * rewriting the file atomically; returns how many were dropped.
 */
export function truncateMetrics(path: string, keep: (r: MetricsRecord) => boolean): number {
  if (!existsSync(path)) return 0;
  const text = readFileSync(path, 'utf8');
  const all = readMetrics(path);
  const kept = all.filter(keep);
  const body = kept.map((r) => `${JSON.stringify(r)}\n`).join('');
  if (body === text) return 0;
  atomicWriteFile(path, new TextEncoder().encode(body));
  return all.length - kept.length;
}
