/**
 * The results file: `bench/results/<date>-<card>.json` holding `{device, adapter, commit, scaling, scan,
 * attention, matmul, elementwise, baselines}`. Each `t2md bench X` fills its own section and merges into an existing file
 * (other sections, PyTorch baselines included, are kept), written atomically (temp file + rename).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type BackendInfo, InputError } from '@t2md/core';

export const BENCHES = ['scan', 'attention', 'scaling', 'matmul', 'elementwise', 'train'] as const;
export type BenchName = (typeof BENCHES)[number];

/** What was measured on, named without the host name. */
export interface DeviceInfo {
  /** e.g. "NVIDIA H100 80GB HBM3 (webgpu) · Intel(R) Xeon(R) Platinum 8480+ ×16". */
  device: string;
  /** The card's short name for file names: "h100", "swiftshader", "wasm". */
  card: string;
  backend: BackendInfo['backend'];
  adapter: BackendInfo['adapter'] | null;
  software: boolean;
}

/** How one section was produced (kept per section, since sections of one file may come from several runs). */
export interface SectionMeta {
  date: string;
  commit: string | null;
  backend: string;
  quick: boolean;
  note?: string;
}

export interface BenchDoc {
  device: string;
  adapter: BackendInfo['adapter'] | null;
  backend: string;
  commit: string | null;
  date: string;
  scaling: unknown[];
  scan: unknown[];
  attention: unknown[];
  matmul: unknown[];
  elementwise: unknown[];
  train?: unknown[];
  baselines: unknown[];
  /** Per section: when, at which commit, on which backend, quick or full sizes. */
  runs: Partial<Record<BenchName, SectionMeta>>;
  notes: string[];
  [extra: string]: unknown;
}

function run(cmd: string, args: string[], cwd?: string): string | null {
  try {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000, cwd, stdio: ['ignore', 'pipe', 'ignore'] });
    return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
  } catch {
    return null; // no such program: not an error for a benchmark
  }
}

/**
 * `T2MD_COMMIT` when set (a copy of the tree on a GPU machine may carry a stale .git: seen on
 * 2026-11-26, every section there was labelled with the session's first commit), else the checked-out
 * commit (with "-dirty" when tracked files changed), else null.
 */
export function gitCommit(): string | null {
  const env = process.env.T2MD_COMMIT?.trim();
  if (env) return env;
  const head = run('git', ['rev-parse', 'HEAD']);
  if (head == null) return null;
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no']);
  return dirty == null ? head : `${head}-dirty`;
}

/** The GPU's marketing name: Dawn's adapter description on NVIDIA is the driver version, so ask nvidia-smi. */
function gpuName(info: BackendInfo): string | null {
  if (info.backend !== 'webgpu' || info.adapter == null) return null;
  if (/nvidia/i.test(`${info.adapter.vendor} ${info.adapter.description}`)) {
    const name = run('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader']);
    if (name) return name.split('\n')[0]!.trim();
  }
  return info.adapter.description || [info.adapter.vendor, info.adapter.architecture].filter(Boolean).join(' ') || null;
}

/** "NVIDIA H100 80GB HBM3" → "h100"; "NVIDIA GeForce RTX 4090" → "rtx-4090"; SwiftShader → "swiftshader". */
export function cardSlug(name: string): string {
  if (/swiftshader/i.test(name)) return 'swiftshader';
  const words = name
    .replace(/\((r|tm)\)/gi, '')
    .split(/[\s:/,]+/)
    .filter((w) => w !== '' && !/^(nvidia|amd|intel|ati|apple|geforce|radeon|corporation|graphics)$/i.test(w));
  const out: string[] = [];
  for (const w of words) {
    out.push(w);
    if (/\d/.test(w) || out.length === 2) break; // up to the first word with a digit: the model number
  }
  const slug = out
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '');
  return slug || 'gpu';
}

export function describeDevice(info: BackendInfo): DeviceInfo {
  const cpus = os.cpus();
  const cpu = `${cpus[0]?.model.trim() || os.arch()} ×${cpus.length}`;
  const gpu = gpuName(info);
  const card = gpu != null ? cardSlug(gpu) : info.backend;
  const device = gpu != null ? `${gpu} (${info.backend}${info.software ? ', software' : ''}) · ${cpu}` : `${cpu} (${info.backend})`;
  return { device, card, backend: info.backend, adapter: info.adapter ?? null, software: info.software };
}

/**
 * `bench/results/<YYYY-MM-DD>-<card>.json` under the repository root (the working directory outside a
 * checkout); quick runs get `-quick` so they never mix with full-size results.
 */
export function defaultResultsPath(card: string, quick: boolean, date = new Date()): string {
  const root = run('git', ['rev-parse', '--show-toplevel']) ?? process.cwd();
  return join(root, 'bench', 'results', `${date.toISOString().slice(0, 10)}-${card}${quick ? '-quick' : ''}.json`);
}

/** A fresh document for one run: only `section` filled. */
export function newDoc(dev: DeviceInfo, section: BenchName, rows: unknown[], meta: SectionMeta, notes: string[]): BenchDoc {
  return {
    device: dev.device,
    adapter: dev.adapter,
    backend: dev.backend,
    commit: meta.commit,
    date: meta.date,
    scaling: [],
    scan: [],
    attention: [],
    matmul: [],
    elementwise: [],
    baselines: [],
    [section]: rows,
    runs: { [section]: meta },
    notes,
  };
}

type Row = Record<string, unknown>;

/** The fields that name one measurement of each section: a new row replaces an old one with the same key. */
const ROW_KEYS: Record<BenchName, readonly string[]> = {
  scan: ['op', 'impl', 'pass', 'L', 'heads', 'headdim', 'dstate', 'chunkSize'],
  attention: ['batch', 'heads', 'tokens', 'headDim'],
  scaling: ['tokens', 'batch'],
  matmul: ['op', 'layout', 'M', 'N', 'K', 'bias', 'variant', 'unroll'],
  elementwise: ['op', 'elements', 'variant'],
  train: ['step', 'batch', 'impl', 'preset'],
};

/**
 * True when the file's section came from the same commit, device and size class as this run: then the
 * rows merge (a sweep split over several calls, e.g. with T2MD_BENCH_SIZES, fills one section);
 * otherwise the new rows replace the section.
 */
function sameSweep(prev: Partial<BenchDoc>, doc: BenchDoc, section: BenchName): boolean {
  const a = prev.runs?.[section];
  const b = doc.runs[section];
  return (
    Array.isArray(prev[section]) &&
    a != null &&
    b != null &&
    a.commit === b.commit &&
    a.quick === b.quick &&
    a.backend === b.backend &&
    prev.device === doc.device
  );
}

function mergeRows(old: Row[], fresh: Row[], keys: readonly string[]): Row[] {
  const key = (r: Row) => JSON.stringify(keys.map((k) => r[k] ?? null));
  const byKey = new Map(fresh.map((r) => [key(r), r]));
  const merged = old.map((r) => byKey.get(key(r)) ?? r);
  const seen = new Set(old.map(key));
  return [...merged, ...fresh.filter((r) => !seen.has(key(r)))];
}

/**
 * The results file at `path`, or null when there is none; an InputError when it is not a JSON object
 * (checked before measuring, so a bad --out fails at once).
 */
export function readResults(path: string): Partial<BenchDoc> | null {
  if (!existsSync(path)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InputError(`${path} exists but is not JSON (${(err as Error).message}); pass another --out or move it away.`);
  }
  if (parsed == null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InputError(`${path} exists but is not a JSON object of bench results; pass another --out or move it away.`);
  }
  return parsed as Partial<BenchDoc>;
}

/**
 * Merges `doc` (one section) into the file at `path` if it exists, keeping its other sections (and the
 * section's own rows of other sizes when they come from the same commit and device), and writes the
 * result atomically. Returns the merged document and a warning when the file was measured
 * on another device.
 */
export function mergeAndWrite(path: string, doc: BenchDoc, section: BenchName): { merged: BenchDoc; warning?: string } {
  const file = resolve(path);
  let merged: BenchDoc = doc;
  let warning: string | undefined;
  const prev = readResults(file);
  if (prev != null) {
    if (typeof prev.device === 'string' && prev.device !== doc.device) {
      warning = `${path} holds results measured on '${prev.device}'; its ${section} section now comes from '${doc.device}'.`;
    }
    const notes = [...new Set([...(Array.isArray(prev.notes) ? prev.notes : []), ...doc.notes])];
    merged = {
      ...prev,
      device: doc.device,
      adapter: doc.adapter,
      backend: doc.backend,
      commit: doc.commit,
      date: doc.date,
      // other sections stay as they were, whatever their shape (older files hold objects there)
      scaling: prev.scaling ?? [],
      scan: prev.scan ?? [],
      attention: prev.attention ?? [],
      matmul: prev.matmul ?? [],
      elementwise: prev.elementwise ?? [],
      ...(prev.train ? { train: prev.train } : {}),
      baselines: prev.baselines ?? [],
      [section]: sameSweep(prev, doc, section) ? mergeRows(prev[section] as Row[], doc[section] as Row[], ROW_KEYS[section]) : doc[section],
      runs: { ...(prev.runs ?? {}), ...doc.runs },
      notes,
    } as BenchDoc;
  }
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(merged, null, 2)}\n`);
  renameSync(tmp, file);
  return { merged, ...(warning ? { warning } : {}) };
}
