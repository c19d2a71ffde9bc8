/**
 * What the benchmarks page says about the committed results (bench/results/*.json): the headline
 * ratios, each against its peer on the same card, and the raw rows as readable tables. Pure functions
 * of the files, so the page cannot drift from what was measured and a test can read the real files.
 * Sections this module does not know are still shown as tables; they only get no headline.
 */

export type Row = Record<string, unknown>;
export interface ResultFile {
  /** File name without `.json`, e.g. `2026-11-26-h100`. */
  name: string;
  data: Record<string, unknown>;
}

/** One line of the summary: what was measured, our figure, the peer's, and ours relative to it. */
export interface Headline {
  /** The results file's section it comes from (`train`, `scaling`, …). */
  section: string;
  what: string;
  ours: string;
  peer: string;
  /** Our speed relative to the peer's (peer time / our time, or our rate / the peer's): above 1 we are faster. */
  ratio: number;
  card: string;
  file: string;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * The fields of a row that hold a timing or a rate made from one: the bench's own pattern
 * (`TIMING_FIELD` of packages/cli/src/bench/results.ts; the docs tests pin the two together).
 */
export const TIMING_FIELD =
  /^(ms|msPerStep|runs|gbps|gflops|tflops|speedup|ratio|shareOfMatmul|passes|profile|profileDetail)$|(Ms|MsPerStep|Runs|Gflops|Tflops|PerSec)$/;

/**
 * A row as the page shows it: one that failed (has an `error`) shows no timing, even where a file
 * holds one beside the error (`bench/results.mjs check` refuses such a file; older ones may have it).
 */
function shown(row: Row): Row {
  if (row.error == null) return row;
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, TIMING_FIELD.test(k) ? null : v]));
}

/** The rows of a section (or of a baseline run), each as the page shows it. */
export const rowsOf = (v: unknown): Row[] =>
  Array.isArray(v) ? v.filter((r): r is Row => r != null && typeof r === 'object' && !Array.isArray(r)).map(shown) : [];
const grouped = (n: number) => n.toLocaleString('en-US');

/** The card a file was measured on: its `device` up to the backend or CPU note. */
export function cardOf(data: Record<string, unknown>): string {
  const device = typeof data.device === 'string' ? data.device : 'unknown card';
  return device.split(/ \(| · /)[0].trim();
}

/**
 * Rows of the PyTorch (and other) baselines, whichever of the file layouts holds them: a list of rows,
 * `{rows: [...]}`, or a list of runs each holding its rows under the op's name (`{impl, attention: [...]}`).
 */
export function baselineRows(data: Record<string, unknown>): Row[] {
  const b = data.baselines;
  if (b != null && typeof b === 'object' && !Array.isArray(b)) return rowsOf((b as { rows?: unknown }).rows);
  return rowsOf(b).flatMap((run) => {
    const nested = Object.entries(run).filter(([, v]) => rowsOf(v).length > 0);
    if (nested.length === 0) return [run];
    const shared = Object.fromEntries(Object.entries(run).filter(([, v]) => v === null || typeof v !== 'object'));
    return nested.flatMap(([op, v]) => rowsOf(v).map((r) => ({ op, ...shared, ...r })));
  });
}

/** `a` and `b` agree on every key listed. */
const same = (a: Row, b: Row, keys: string[]) => keys.every((k) => a[k] === b[k]);
const minBy = (rows: Row[], key: string) =>
  rows.filter((r) => num(r[key]) != null).sort((a, b) => (num(a[key]) as number) - (num(b[key]) as number))[0];
const ms = (v: number) => `${v >= 1000 ? grouped(Math.round(v)) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ms`;

type Finder = (data: Record<string, unknown>) => Omit<Headline, 'section' | 'card' | 'file'>[];

/** The student's speed-up over the teacher (one forward, batch 1), at 4,096 tokens and up. */
const scaling: Finder = (data) =>
  rowsOf(data.scaling)
    .filter((r) => (r.batch ?? 1) === 1 && (num(r.tokens) ?? 0) >= 4096 && num(r.teacherMs) != null && num(r.studentMs) != null)
    .map((r) => ({
      what: `student forward, ${grouped(r.tokens as number)} tokens`,
      ours: ms(r.studentMs as number),
      peer: `teacher, ${ms(r.teacherMs as number)}`,
      ratio: (r.teacherMs as number) / (r.studentMs as number),
    }));

/** Our attention kernel against PyTorch's SDPA at the largest shape both measured. */
const attention: Finder = (data) => {
  const torch = baselineRows(data).filter((b) => b.op === 'attention' && num(b.fwdMs) != null);
  const pairs = rowsOf(data.attention)
    .map((r) => ({ r, b: torch.find((b) => same(r, b, ['batch', 'heads', 'tokens', 'headDim'])) }))
    .filter((p): p is { r: Row; b: Row } => p.b != null && num(p.r.fwdMs) != null)
    .sort((x, y) => (y.r.tokens as number) - (x.r.tokens as number));
  if (pairs.length === 0) return [];
  const { r, b } = pairs[0];
  return [
    {
      what: `attention forward, ${r.heads} heads × ${grouped(r.tokens as number)} tokens × ${r.headDim}`,
      ours: ms(r.fwdMs as number),
      peer: `PyTorch SDPA, ${ms(b.fwdMs as number)}`,
      ratio: (b.fwdMs as number) / (r.fwdMs as number),
    },
  ];
};

/** ssdScan's forward (best kernel row) against the chunked PyTorch scan and the tfjs-ops reference. */
const scan: Finder = (data) => {
  const rows = rowsOf(data.scan).filter((r) => r.op === 'ssdScan' && r.pass === 'forward');
  const torch = baselineRows(data).filter((b) => b.op === 'ssdScan' && b.pass === 'forward');
  const out: Omit<Headline, 'section' | 'card' | 'file'>[] = [];
  const at = (L: number, impl: (r: Row) => boolean, from: Row[]) =>
    minBy(
      from.filter((r) => r.L === L && impl(r)),
      'ms',
    );
  const lengths = [...new Set(rows.map((r) => r.L as number))].sort((a, b) => b - a);
  for (const [peerName, pool, isPeer] of [
    ['PyTorch, chunked scan', torch, (_: Row) => true],
    ['tfjs-ops reference', rows, (r: Row) => r.impl === 'tfjs-ref'],
  ] as const) {
    for (const L of lengths) {
      const ours = at(L, (r) => r.impl === 'kernel', rows);
      const peer = at(L, isPeer, pool);
      if (ours == null || peer == null) continue;
      out.push({
        what: `ssdScan forward, L = ${grouped(L)}${ours.heads ? `, ${ours.heads}×${ours.headdim}, d_state ${ours.dstate}` : ''}`,
        ours: ms(ours.ms as number),
        peer: `${peerName}, ${ms(peer.ms as number)}`,
        ratio: (peer.ms as number) / (ours.ms as number),
      });
      break;
    }
  }
  return out;
};

/** The GEMM behind `linear` (best variant) against PyTorch's F.linear, at the largest product both ran. */
const matmul: Finder = (data) => {
  const torch = baselineRows(data).filter((b) => b.op === 'matmul' && num(b.ms) != null);
  const ours = rowsOf(data.matmul).filter((r) => r.variant !== 'tfjs' && num(r.ms) != null && r.error == null);
  const flops = (r: Row) => (r.M as number) * (r.N as number) * (r.K as number);
  const pairs = torch
    .map((b) => ({
      b,
      r: minBy(
        ours.filter((r) => same(r, b, ['M', 'N', 'K'])),
        'ms',
      ),
    }))
    .filter((p): p is { b: Row; r: Row } => p.r != null)
    .sort((x, y) => flops(y.b) - flops(x.b));
  if (pairs.length === 0) return [];
  const { b, r } = pairs[0];
  const tf = (v: unknown) => (num(v) != null ? `${(v as number).toFixed(1)} TFLOP/s` : '');
  return [
    {
      what: `GEMM ${r.op ?? b.name}, ${grouped(r.M as number)}×${grouped(r.N as number)}×${grouped(r.K as number)}`,
      ours: `${ms(r.ms as number)} (${tf(r.tflops)})`,
      peer: `PyTorch F.linear, ${ms(b.ms as number)} (${tf(b.tflops)})`,
      ratio: (b.ms as number) / (r.ms as number),
    },
  ];
};

/** The fused elementwise kernels against PyTorch on the same op (matched by name). */
const elementwise: Finder = (data) => {
  const torch = baselineRows(data).filter((b) => b.op === 'elementwise' && num(b.gbps) != null);
  const rows = rowsOf(data.elementwise).filter((r) => r.variant !== 'tfjs' && num(r.gbps) != null);
  const out: Omit<Headline, 'section' | 'card' | 'file'>[] = [];
  for (const b of torch) {
    const best = rows
      .filter((r) => r.op === b.name && r.elements === b.elements)
      .sort((x, y) => (y.gbps as number) - (x.gbps as number))[0];
    if (best == null) continue;
    out.push({
      what: `${b.name}, ${((b.elements as number) / 2 ** 20) | 0}M floats`,
      ours: `${grouped(Math.round(best.gbps as number))} GB/s`,
      peer: `PyTorch, ${grouped(Math.round(b.gbps as number))} GB/s`,
      ratio: (best.gbps as number) / (b.gbps as number),
    });
  }
  return out;
};

/**
 * Training throughput (`train` rows: `{step, batch, samplesPerSec, impl}`): ours against each PyTorch
 * implementation at the largest batch both ran, per step kind.
 */
const train: Finder = (data) => {
  const rows = rowsOf(data.train).filter((r) => num(r.samplesPerSec) != null && typeof r.impl === 'string');
  const out: Omit<Headline, 'section' | 'card' | 'file'>[] = [];
  for (const step of [...new Set(rows.map((r) => String(r.step)))]) {
    const ours = rows.filter((r) => String(r.step) === step && r.impl === 't2md');
    for (const impl of [...new Set(rows.filter((r) => r.impl !== 't2md').map((r) => r.impl as string))]) {
      const pair = ours
        .map((r) => ({ r, p: rows.find((p) => p.impl === impl && String(p.step) === step && p.batch === r.batch) }))
        .filter((x): x is { r: Row; p: Row } => x.p != null)
        .sort((a, b) => (b.r.batch as number) - (a.r.batch as number))[0];
      if (pair == null) continue;
      out.push({
        what: `training step (${step}), batch ${grouped(pair.r.batch as number)}`,
        ours: `${grouped(Math.round(pair.r.samplesPerSec as number))} samples/s`,
        peer: `${impl}, ${grouped(Math.round(pair.p.samplesPerSec as number))} samples/s`,
        ratio: (pair.r.samplesPerSec as number) / (pair.p.samplesPerSec as number),
      });
    }
  }
  return out;
};

/**
 * Sampling (`sample` rows of `t2md bench sample`): for each model at the most images measured, the
 * whole step's model FLOP rate against `tf.matMul`'s rate on the model's own GEMM shapes, measured in
 * the same process (the ratio is the share of the matMul rate the step reaches).
 */
const sample: Finder = (data) => {
  const rows = rowsOf(data.sample).filter((r) => num(r.gflops) != null && num(r.matmulGflops) != null && num(r.msPerImageStep) != null);
  const out: Omit<Headline, 'section' | 'card' | 'file'>[] = [];
  for (const model of [...new Set(rows.map((r) => String(r.model)))]) {
    const r = rows.filter((x) => String(x.model) === model).sort((a, b) => (b.batch as number) - (a.batch as number))[0]!;
    out.push({
      what: `sampling step (${model}), ${grouped(r.batch as number)} images: ${ms(r.msPerImageStep as number)} per image-step`,
      ours: `${(r.gflops as number).toFixed(1)} GFLOP/s`,
      peer: `tf.matMul, same shapes, ${(r.matmulGflops as number).toFixed(1)} GFLOP/s`,
      ratio: (r.gflops as number) / (r.matmulGflops as number),
    });
  }
  return out;
};

const FINDERS: [string, Finder][] = [
  ['scaling', scaling],
  ['train', train],
  ['sample', sample],
  ['attention', attention],
  ['scan', scan],
  ['matmul', matmul],
  ['elementwise', elementwise],
];

/** What each section measures, in words. */
const SECTION_NAMES: Record<string, string> = {
  scaling: 'teacher-vs-student scaling',
  train: 'training',
  attention: 'attention',
  scan: 'scan',
  matmul: 'GEMM',
  elementwise: 'elementwise',
};

/** The headlines, each section from the newest file that has one (files sorted newest first). */
export function headlines(files: ResultFile[]): Headline[] {
  const out: Headline[] = [];
  for (const [section, find] of FINDERS) {
    for (const f of files) {
      const found = find(f.data).filter((h) => Number.isFinite(h.ratio) && h.ratio > 0);
      if (found.length === 0) continue;
      out.push(...found.map((h) => ({ section, ...h, card: cardOf(f.data), file: f.name })));
      break;
    }
  }
  return out;
}

/** Headlines grouped by card, in order of first appearance (the page shows one table per card). */
export function byCard(list: Headline[]): { card: string; files: string[]; headlines: Headline[] }[] {
  const out = new Map<string, { card: string; files: string[]; headlines: Headline[] }>();
  for (const h of list) {
    const g = out.get(h.card) ?? { card: h.card, files: [], headlines: [] };
    if (!g.files.includes(h.file)) g.files.push(h.file);
    g.headlines.push(h);
    out.set(h.card, g);
  }
  return [...out.values()];
}

/**
 * The README's figures: the page's summary as markdown tables, one per card, naming the files, then
 * the sections no committed file has figures for. The README holds this text between its
 * `<!-- bench-figures -->` markers, and apps/docs/test/readme.test.ts checks that it still does, so the
 * README and this page cannot drift apart.
 */
export function readmeFigures(files: ResultFile[]): string {
  const all = headlines(files);
  const lines: string[] = [];
  for (const g of byCard(all)) {
    const where = g.files.map((f) => `[\`bench/results/${f}.json\`](bench/results/${f}.json)`).join(', ');
    lines.push(`On ${g.card} (${where}):`, '', '| measured | T2MD.js | peer, same card | ours vs peer |', '|---|---|---|---|');
    for (const h of g.headlines) lines.push(`| ${h.what} | ${h.ours} | ${h.peer} | ${fmtRatio(h.ratio)} |`);
    lines.push('');
  }
  const missing = FINDERS.map(([s]) => s).filter((s) => !all.some((h) => h.section === s));
  if (missing.length > 0) {
    const names = missing.map((s) => SECTION_NAMES[s] ?? s);
    const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : names[0];
    lines.push(`No committed results file has ${list} figures yet ([bench/README.md](bench/README.md) says how to measure them).`);
  }
  return lines.join('\n').trim();
}

/** `1.50×`, `0.79×`. */
export const fmtRatio = (r: number) => `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;

// ---- raw tables --------------------------------------------------------------------------------

/** Headers for the keys the bench writes; anything else is split from camelCase with its unit guessed. */
const HEADERS: Record<string, string> = {
  tokens: 'tokens',
  ratio: 'speed-up (×)',
  L: 'L',
  headdim: 'head dim',
  headDim: 'head dim',
  dstate: 'd_state',
  chunkSize: 'chunk',
  ms: 'ms',
  gbps: 'GB/s',
  gpuMs: 'GPU ms',
  tflops: 'TFLOP/s',
  fwdTflops: 'forward TFLOP/s',
  fwdMs: 'forward (ms)',
  fwdBwdMs: 'fwd + bwd (ms)',
  naiveFwdMs: 'naive forward (ms)',
  naiveFwdBwdMs: 'naive fwd + bwd (ms)',
  relErrVsNaive: 'rel. error vs naive',
  relErr: 'rel. error',
  maxErr: 'max error',
  samplesPerSec: 'samples/s',
  msPerStep: 'ms per step',
  msPerImageStep: 'ms per image-step',
  gflopPerImageStep: 'GFLOP per image-step',
  gflops: 'GFLOP/s',
  matmulGflops: 'matMul GFLOP/s',
  shareOfMatmul: 'share of matMul rate',
  profileMs: 'profiled call (ms)',
  kernelsPerStep: 'kernels per step',
  gpuPoolMB: 'GPU pool (MiB)',
  teacherMB: 'teacher peak (MiB)',
  studentMB: 'student peak (MiB)',
  devicePeakMB: 'device peak (MiB)',
  teacherDeviceMB: 'teacher device peak (MiB)',
  studentDeviceMB: 'student device peak (MiB)',
  elements: 'elements',
  bytes: 'bytes',
  reps: 'calls per sync',
  autoPick: 'auto picks',
};

/** A column header with its unit: `teacherAttnMs` → `teacher attn (ms)`, `studentMB` → `student (MiB)`. */
export function header(key: string): string {
  if (HEADERS[key]) return HEADERS[key];
  const unit = /Ms$/.test(key) ? 'ms' : /MB$/.test(key) ? 'MiB' : /Gbps$/.test(key) ? 'GB/s' : '';
  const base = key.replace(/(Ms|MB|Gbps)$/, '');
  const words = base.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return unit ? `${words} (${unit})` : words;
}

/** A cell: integers grouped (`13,740`), others to 3–4 significant digits, tiny errors as `9.97e-7`. */
export function cell(v: unknown): { text: string; title?: string } {
  if (v == null) return { text: '—' };
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return { text: String(v) };
    if (Number.isInteger(v)) return { text: grouped(v) };
    const a = Math.abs(v);
    if (a !== 0 && a < 1e-3) return { text: v.toExponential(2) };
    if (a >= 1000) return { text: grouped(Math.round(v)) };
    return { text: String(Number(v.toPrecision(4))) };
  }
  const s = String(v);
  return s.length > 40 ? { text: `${s.slice(0, 37)}…`, title: s } : { text: s };
}

/** A readable table: scalar columns that vary, with the constant ones stated once above it. */
export interface Table {
  title: string;
  columns: { key: string; header: string }[];
  rows: { text: string; title?: string }[][];
  /** Columns with one value in every row, e.g. `heads 36 · head dim 64`. */
  constant: string;
}

const scalar = (v: unknown) => v === null || ['number', 'string', 'boolean'].includes(typeof v);

function tableOf(title: string, rows: Row[]): Table {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r).filter((k) => scalar(r[k]))))].filter((k) => rows.some((r) => r[k] != null));
  const varying = keys.filter((k) => rows.length === 1 || new Set(rows.map((r) => JSON.stringify(r[k] ?? null))).size > 1);
  const fixed = keys.filter((k) => !varying.includes(k));
  return {
    title,
    columns: varying.map((key) => ({ key, header: header(key) })),
    rows: rows.map((r) => varying.map((k) => cell(r[k]))),
    constant: fixed.map((k) => `${header(k)} ${cell(rows[0][k]).text}`).join(' · '),
  };
}

/**
 * Every array-of-rows section of a file as tables; baselines split by op (their rows differ in kind,
 * so one table would be mostly empty cells). Unknown sections are tabled the same way.
 */
export function tables(data: Record<string, unknown>): Table[] {
  const out: Table[] = [];
  for (const [name, value] of Object.entries(data)) {
    const rows = name === 'baselines' ? baselineRows(data) : rowsOf(value);
    if (rows.length === 0 || name === 'notes') continue;
    if (name === 'baselines') {
      for (const op of [...new Set(rows.map((r) => String(r.op ?? 'other')))]) {
        out.push(
          tableOf(
            `baselines: ${op}`,
            rows.filter((r) => String(r.op ?? 'other') === op),
          ),
        );
      }
    } else {
      out.push(tableOf(name, rows));
    }
  }
  return out;
}

// ---- charts ------------------------------------------------------------------------------------

export interface Series {
  name: string;
  points: [number, number][];
  color: string;
}

const COLORS = ['#2a7ae2', '#d9534f', '#5cb85c', '#f0ad4e', '#8e44ad'];

/** Training throughput by batch, one line per implementation, for one step kind (ours first). */
export function trainSeries(rows: Row[], step: string): Series[] {
  const mine = rowsOf(rows).filter((r) => String(r.step) === step && num(r.samplesPerSec) != null && num(r.batch) != null);
  const impls = [...new Set(mine.map((r) => String(r.impl)))].sort((a, b) => (a === 't2md' ? -1 : b === 't2md' ? 1 : a.localeCompare(b)));
  return impls.map((impl, i) => ({
    name: impl === 't2md' ? 'T2MD.js (WebGPU)' : impl,
    points: mine
      .filter((r) => String(r.impl) === impl)
      .map((r) => [r.batch as number, r.samplesPerSec as number] as [number, number])
      .sort((a, b) => a[0] - b[0]),
    color: COLORS[i % COLORS.length],
  }));
}

/** A point of a chart that failed (its row has an `error`): where it would have been, and why it is not. */
export interface FailedPoint {
  x: number;
  label: string;
}

/**
 * The failed rows among `rows` as chart points at `xKey` (tokens, batch), for the rows `keep` selects;
 * a chart marks them on its x axis, since a failed row has no timing to plot. Reads the raw rows (rowsOf
 * keeps `error`).
 */
export function failedPoints(rows: unknown, xKey: string, keep: (r: Row) => boolean = () => true): FailedPoint[] {
  return rowsOf(rows)
    .filter((r) => r.error != null && num(r[xKey]) != null && keep(r))
    .map((r) => ({
      x: r[xKey] as number,
      label: `${xKey} ${grouped(r[xKey] as number)}${r.batch != null && xKey !== 'batch' ? `, batch ${r.batch}` : ''}: failed (${String(r.error)})`,
    }))
    .sort((a, b) => a.x - b.x);
}

/**
 * Axis ticks: on a log axis the 1-2-5 steps of each decade inside [lo, hi] (at most ~8), on a linear
 * axis round steps from 0.
 */
export function niceTicks(lo: number, hi: number, log: boolean): number[] {
  if (!(hi > lo)) return [lo];
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= lo * 0.999 && v <= hi * 1.001) out.push(Number(v.toPrecision(3)));
      }
    }
    return out.length > 8 ? out.filter((v) => /^(10*|0\.0*1)$/.test(String(v))) : out; // powers of ten only
  }
  const raw = (hi - lo) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(6)));
  return out;
}
