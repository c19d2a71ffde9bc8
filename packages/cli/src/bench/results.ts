/**
 * The results file: `bench/results/<date>-<card>.json` holding `{device, adapter, commit, <one array per
 * section>, baselines, runs, notes}`. Each `t2md bench X` fills its own section and merges into an
 * existing file (other sections, PyTorch baselines included, are kept), written atomically (temp file +
 * rename) after every point, so that a run stopped mid-section keeps what it measured; its
 * `runs.<section>.complete` says whether it got to the end. Every row carries `run`: the commit it was
 * measured at (from git, or from the bundle on the GPU machine), whether the tree was dirty, the card,
 * the driver, Dawn's version, the Dawn flags and every setting that changes the numbers, so a script
 * can trust a row on its own. The file is written
 * only with `--out` or inside this repository; nothing in it is edited by hand (`bench/results.mjs`
 * checks and prunes).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type BackendInfo, InputError } from '@t2md/core';
import { atomicWriteFile } from '@t2md/distill';

/**
 * The sections of a results file and the fields that name one measurement in each (a new row replaces
 * an old one with the same key). Adding a benchmark's section is one entry here.
 */
export const SECTIONS = [
  { name: 'scan', keys: ['op', 'impl', 'variant', 'gemmTile', 'pass', 'L', 'heads', 'headdim', 'dstate', 'chunkSize'] },
  { name: 'attention', keys: ['batch', 'heads', 'tokens', 'headDim'] },
  { name: 'scaling', keys: ['tokens', 'batch'] },
  { name: 'matmul', keys: ['op', 'layout', 'M', 'N', 'K', 'bias', 'variant', 'unroll'] },
  { name: 'elementwise', keys: ['op', 'elements', 'variant'] },
  { name: 'train', keys: ['step', 'batch', 'impl', 'preset', 'recompute'] },
  { name: 'sample', keys: ['model', 'layout', 'batch', 'size'] },
] as const;

export type BenchName = (typeof SECTIONS)[number]['name'];

/** The fields that name one PyTorch baseline row (bench/merge-baselines.mjs keeps the same list). */
export const BASELINE_KEYS = [
  'op',
  'impl',
  'name',
  'pass',
  'L',
  'chunkSize',
  'heads',
  'tokens',
  'headDim',
  'M',
  'N',
  'K',
  'elements',
] as const;
export const BENCHES: readonly BenchName[] = SECTIONS.map((s) => s.name);

/**
 * The fields of a row (of any section, or a baseline) that hold a timing or a rate made from one: ms and
 * their runs, samples/s, GB/s, TFLOP/s, speed-ups, GPU profiles. A row holds timings or an `error`,
 * never both: the times of a point that then failed (out of memory, a WebGPU error) measure nothing.
 * The docs' benchmarks page keeps the same pattern (apps/docs/components/bench-summary.ts; a test pins them).
 */
export const TIMING_FIELD =
  /^(ms|msPerStep|runs|gbps|gflops|tflops|speedup|ratio|shareOfMatmul|passes|profile|profileDetail)$|(Ms|MsPerStep|Runs|Gflops|Tflops|PerSec)$/;

/** The timing fields of `row` that hold a value (a number or text, or a non-empty list). */
export function timingsOf(row: Record<string, unknown>): string[] {
  return Object.keys(row).filter((k) => {
    const v = row[k];
    return TIMING_FIELD.test(k) && v != null && (!Array.isArray(v) || v.length > 0);
  });
}
const ROW_KEYS: Record<string, readonly string[]> = Object.fromEntries(SECTIONS.map((s) => [s.name, s.keys]));

/** What was measured on, named without the host name. */
export interface DeviceInfo {
  /** e.g. "NVIDIA H100 80GB HBM3 (webgpu) · Intel(R) Xeon(R) Platinum 8480+ ×16". */
  device: string;
  /** The card's short name for file names: "h100", "swiftshader", "wasm". */
  card: string;
  backend: BackendInfo['backend'];
  adapter: BackendInfo['adapter'] | null;
  software: boolean;
  /** The GPU driver (nvidia-smi's driver_version on NVIDIA, else the adapter's description); null off WebGPU. */
  driver?: string | null;
}

/**
 * The source a run measured: the commit and whether the tree differed from it. From git in this
 * repository, or from the stamp a GPU bundle carries (`bench/pack.sh`), since the copy of the tree on
 * the GPU machine may hold a stale .git (seen on 2026-11-26: every section there was labelled with the
 * session's first commit).
 */
export interface SourceStamp {
  commit: string | null;
  dirty: boolean;
  /** 'git' (this checkout), 'bundle' (stamped when the GPU bundle was packed) or 'none' (no checkout). */
  from: 'git' | 'bundle' | 'none';
}

/** What the entry point knows that the CLI cannot see (bench/gpu.ts passes it to `main`). */
export interface RunContext {
  /** The source the bundle was built from. */
  source?: SourceStamp;
  /** The Dawn flags `navigator.gpu` was created with (the entry created it, not initBackend). */
  dawnFlags?: readonly string[];
  /** The `webgpu` npm package (Dawn's Node binding) the bundle carries. */
  dawn?: string;
}

/**
 * Provenance of one run, stored on every row it measured (`row.run`). Everything not fixed by the
 * commit that changes the numbers is here: backend, sizes class, Dawn and its flags, bench settings.
 */
export interface RunStamp {
  commit: string | null;
  /** Present (true) only when the tree differed from the commit and `--allow-dirty` said go on. */
  dirty?: true;
  date: string;
  card: string;
  device: string;
  driver: string | null;
  /** `webgpu@<version>`, the npm package that carries Dawn; null off WebGPU. */
  dawn: string | null;
  dawnFlags?: readonly string[];
  backend: string;
  quick: boolean;
  /** Settings of the bench that change its numbers (e.g. the GEMM variant the scaling run used). */
  settings?: Record<string, unknown>;
}

/** How one section was produced (kept per section, since sections of one file may come from several runs). */
export interface SectionMeta {
  date: string;
  commit: string | null;
  backend: string;
  quick: boolean;
  note?: string;
  dirty?: boolean;
  dawn?: string | null;
  dawnFlags?: readonly string[];
  settings?: Record<string, unknown>;
  /**
   * Whether the run that wrote this section measured every point of it. The file is rewritten after
   * each point with `false`, and with `true` once the last one is done: a file left with `false` holds
   * the points of a run that was stopped (timed out, killed, Ctrl-C) or is still going, each of them
   * whole. Absent in files written before this field (they were written only at the end: complete).
   */
  complete?: boolean;
}

export interface BenchDoc {
  device: string;
  adapter: BackendInfo['adapter'] | null;
  backend: string;
  commit: string | null;
  date: string;
  baselines: unknown[];
  /** Per section: when, at which commit, on which backend, quick or full sizes. */
  runs: Partial<Record<BenchName, SectionMeta>>;
  notes: string[];
  [section: string]: unknown;
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
 * The root of this repository (the T2MD monorepo) when the working directory is inside a checkout of
 * it, else null: a results file is written by default only there.
 */
export function repoRoot(cwd = process.cwd()): string | null {
  const root = run('git', ['rev-parse', '--show-toplevel'], cwd);
  if (root == null) return null;
  try {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name?: string };
    return pkg.name === 't2md-monorepo' ? root : null;
  } catch {
    return null;
  }
}

/** The checked-out commit of this repository (full sha), or null outside it. */
export function gitCommit(cwd = process.cwd()): string | null {
  const root = repoRoot(cwd);
  return root == null ? null : run('git', ['rev-parse', 'HEAD'], root);
}

/** The commit and whether any file differs from it (tracked changes or untracked files git does not ignore). */
export function gitSource(cwd = process.cwd()): SourceStamp {
  const root = repoRoot(cwd);
  const commit = root == null ? null : run('git', ['rev-parse', 'HEAD'], root);
  if (root == null || commit == null) return { commit: null, dirty: false, from: 'none' };
  return { commit, dirty: run('git', ['status', '--porcelain'], root) != null, from: 'git' };
}

/**
 * The source to stamp rows with: the bundle's when the entry passed one, else git's. A dirty tree is
 * refused unless `allowDirty` (the rows then say `dirty: true`), and a run outside any checkout has no
 * commit (allowed only with an explicit --out, which the caller checks).
 */
export function resolveSource(ctx: RunContext, allowDirty: boolean): SourceStamp {
  const source = ctx.source ?? gitSource();
  if (source.dirty && !allowDirty) {
    throw new InputError(
      `the tree differs from commit ${source.commit?.slice(0, 10)} (${source.from === 'bundle' ? 'when the GPU bundle was packed' : 'git status is not clean'}); commit first so the results name what was measured, or pass --allow-dirty (the rows then record dirty: true).`,
    );
  }
  return source;
}

/** The GPU's marketing name: Dawn's adapter description on NVIDIA is the driver version, so ask nvidia-smi. */
function gpuName(info: BackendInfo): string | null {
  if (info.backend !== 'webgpu' || info.adapter == null) return null;
  if (isNvidia(info)) {
    const name = run('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader']);
    if (name) return name.split('\n')[0]!.trim();
  }
  return info.adapter.description || [info.adapter.vendor, info.adapter.architecture].filter(Boolean).join(' ') || null;
}

const isNvidia = (info: BackendInfo) => /nvidia/i.test(`${info.adapter?.vendor} ${info.adapter?.description}`);

/** nvidia-smi's driver_version on NVIDIA, else the adapter's description (Dawn puts the driver there); null off WebGPU. */
function driverOf(info: BackendInfo): string | null {
  if (info.backend !== 'webgpu' || info.adapter == null) return null;
  if (isNvidia(info)) {
    const v = run('nvidia-smi', ['--query-gpu=driver_version', '--format=csv,noheader']);
    if (v) return v.split('\n')[0]!.trim();
  }
  return info.adapter.description || null;
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
  return { device, card, backend: info.backend, adapter: info.adapter ?? null, software: info.software, driver: driverOf(info) };
}

/**
 * `bench/results/<YYYY-MM-DD>-<card>.json` under the repository root (`root`, default this checkout's;
 * the working directory outside one); quick runs get `-quick` so they never mix with full-size results.
 */
export function defaultResultsPath(card: string, quick: boolean, date = new Date(), root = repoRoot() ?? process.cwd()): string {
  return join(root, 'bench', 'results', `${date.toISOString().slice(0, 10)}-${card}${quick ? '-quick' : ''}.json`);
}

/** The stamp every row of one run carries. */
export function runStamp(dev: DeviceInfo, meta: SectionMeta): RunStamp {
  return {
    commit: meta.commit,
    ...(meta.dirty ? { dirty: true as const } : {}),
    date: meta.date,
    card: dev.card,
    device: dev.device,
    driver: dev.driver ?? null,
    dawn: dev.backend === 'webgpu' ? (meta.dawn ?? null) : null,
    ...(dev.backend === 'webgpu' && meta.dawnFlags ? { dawnFlags: meta.dawnFlags } : {}),
    backend: meta.backend,
    quick: meta.quick,
    ...(meta.settings && Object.keys(meta.settings).length > 0 ? { settings: meta.settings } : {}),
  };
}

/** A fresh document for one run: only `section` filled, each of its rows stamped with `run`. */
export function newDoc(dev: DeviceInfo, section: BenchName, rows: readonly unknown[], meta: SectionMeta, notes: string[]): BenchDoc {
  const stamp = runStamp(dev, meta);
  return {
    device: dev.device,
    adapter: dev.adapter,
    backend: dev.backend,
    commit: meta.commit,
    date: meta.date,
    ...Object.fromEntries(SECTIONS.map((s) => [s.name, []])),
    baselines: [],
    [section]: rows.map((r) => ({ ...(r as Row), run: stamp })),
    runs: { [section]: meta },
    notes,
  };
}

type Row = Record<string, unknown>;

/**
 * True when the file's section came from the same commit, device and size class as this run: then the
 * rows merge (a sweep split over several calls, e.g. with --sizes, fills one section); otherwise the
 * new rows replace the section.
 */
function sameSweep(prev: Partial<BenchDoc>, doc: BenchDoc, section: BenchName): boolean {
  const a = prev.runs?.[section];
  const b = doc.runs[section];
  return (
    Array.isArray(prev[section]) &&
    a != null &&
    b != null &&
    a.commit === b.commit &&
    (a.dirty ?? false) === (b.dirty ?? false) &&
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
  return sectionWriter(path, section)(doc);
}

/**
 * `mergeAndWrite` for a run that rewrites its section after every point: the section's earlier rows
 * (and the device they were measured on) are the file's as it was when the writer was made, before the
 * run, so each write replaces the run's own previous one instead of merging into it (its rows that
 * share a key, e.g. the scan's forward variants on WebGPU, would collapse into one); the rest is read
 * again at each write, so a section another run wrote meanwhile is kept. The last write gives the
 * document one write at the end would have.
 */
export function sectionWriter(path: string, section: BenchName): (doc: BenchDoc) => { merged: BenchDoc; warning?: string } {
  const file = resolve(path);
  const start = readResults(file);
  return (doc) => {
    const now = readResults(file);
    const prev =
      now == null
        ? start
        : { ...now, device: start?.device, [section]: start?.[section], runs: { ...now.runs, [section]: start?.runs?.[section] } };
    const { merged, warning } = mergeDoc(path, prev, doc, section);
    mkdirSync(dirname(file), { recursive: true });
    atomicWriteFile(file, new TextEncoder().encode(`${JSON.stringify(merged, null, 2)}\n`));
    return { merged, ...(warning ? { warning } : {}) };
  };
}

/** `doc` (one section) merged into `prev`, the file's document (see mergeAndWrite). */
function mergeDoc(path: string, prev: Partial<BenchDoc> | null, doc: BenchDoc, section: BenchName): { merged: BenchDoc; warning?: string } {
  let merged: BenchDoc = doc;
  let warning: string | undefined;
  if (prev != null) {
    if (typeof prev.device === 'string' && prev.device !== doc.device) {
      warning = `${path} holds results measured on '${prev.device}'; its ${section} section now comes from '${doc.device}'.`;
    }
    const notes = [...new Set([...(Array.isArray(prev.notes) ? prev.notes : []), ...doc.notes])];
    // other sections stay as they were, whatever their shape (older files hold objects there)
    const kept = Object.fromEntries(SECTIONS.filter((s) => prev[s.name] != null).map((s) => [s.name, prev[s.name]]));
    merged = {
      ...prev,
      device: doc.device,
      adapter: doc.adapter,
      backend: doc.backend,
      commit: doc.commit,
      date: doc.date,
      ...Object.fromEntries(SECTIONS.map((s) => [s.name, []])),
      ...kept,
      baselines: prev.baselines ?? [],
      [section]: sameSweep(prev, doc, section) ? mergeRows(prev[section] as Row[], doc[section] as Row[], ROW_KEYS[section]) : doc[section],
      runs: { ...(prev.runs ?? {}), ...doc.runs },
      notes,
    } as BenchDoc;
  }
  return { merged, ...(warning ? { warning } : {}) };
}
