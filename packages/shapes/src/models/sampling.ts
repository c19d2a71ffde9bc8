import table from '../../models/sampling.json';

/**
 * The measured step table of the shipped models (`models/sampling.json`): for each shipped model, the
 * eval's overall score at several DPM-Solver++ step counts, and the step count `npm run demo`, the
 * playground and `t2md sample` (shipped model, no `--steps`) use — the fewest steps whose score is within
 * `tolerance` of the score at `reference` steps. Written by `bench/step-table.mjs` from `t2md eval --json`
 * runs; never by hand. The file names each model file's size and sha256, so a table left from other
 * weights is refused (callers fall back to `FALLBACK_STEPS` and say why) instead of steering them.
 */

/** The shipped models the table covers. */
export type ShippedModelName = 'teacher' | 'student';

/** What every row of the table was measured with: `t2md eval`'s settings. */
export interface StepTableEval {
  prompts: number;
  seed: number;
  sampler: string;
  cfg: number;
  /** Prompts per model call (eval's noise depends on it). */
  batch: number;
  backend: string;
}

/** One eval run: the overall score (mean of the six categories) at `steps` sampling steps. */
export interface StepTableRow {
  steps: number;
  overall: number;
}

/** A shipped model's part of the table. */
export interface StepTableModel {
  /** The model file the rows were measured on: `models/<name>.safetensors`. */
  file: { bytes: number; sha256: string };
  /** The step count chosen from `table` (see `chooseSteps`). */
  steps: number;
  table: readonly StepTableRow[];
  /** Where it was measured: the device (GPU card, or the CPU and backend), the commit and the date. */
  card: string;
  commit: string;
  date: string;
}

/** `models/sampling.json`. */
export interface StepTable {
  schema: 1;
  /** A step count qualifies when its score is at least the reference score minus this. */
  tolerance: number;
  /** The step count whose score is the reference (eval's default). */
  reference: number;
  eval: StepTableEval;
  models: Partial<Record<ShippedModelName, StepTableModel>>;
  /** How the file was made: the command that regenerates it. */
  command: string;
}

/** Steps used where the table has no valid row for a model: `t2md eval`'s and `t2md sample`'s documented default. */
export const FALLBACK_STEPS = 20;

/**
 * The fewest steps whose overall score is at least `score(reference) − tolerance`. Throws when the
 * table has no row at `reference` steps. A table that is not monotone in steps still picks the fewest.
 */
export function chooseSteps(rows: readonly StepTableRow[], tolerance: number, reference: number): number {
  const ref = rows.find((r) => r.steps === reference);
  if (ref == null) throw new Error(`the step table has no row at ${reference} steps, the reference; measure it (bench/step-table.mjs).`);
  const ok = rows.filter((r) => r.overall >= ref.overall - tolerance - 1e-9).map((r) => r.steps);
  return Math.min(...ok);
}

/** Checks that `value` is a step table (the parsed `sampling.json`); throws an Error naming the first problem. */
export function parseStepTable(value: unknown): StepTable {
  const t = value as StepTable;
  const bad = (what: string): never => {
    throw new Error(`models/sampling.json: ${what}; regenerate it with bench/step-table.mjs.`);
  };
  if (t == null || typeof t !== 'object') bad('not a JSON object');
  if (t.schema !== 1) bad(`schema ${String(t.schema)} is not 1`);
  if (!(t.tolerance >= 0)) bad('tolerance is not a number ≥ 0');
  if (!Number.isInteger(t.reference)) bad('reference is not an integer step count');
  if (t.eval == null || typeof t.eval.sampler !== 'string') bad('eval settings are missing');
  for (const [name, m] of Object.entries(t.models ?? {})) {
    if (m == null || !Array.isArray(m.table) || m.table.length === 0) bad(`${name} has no table`);
    if (typeof m.file?.sha256 !== 'string' || !Number.isInteger(m.file?.bytes)) bad(`${name} names no model file (bytes, sha256)`);
    for (const r of m.table)
      if (!Number.isInteger(r.steps) || !(r.overall >= 0 && r.overall <= 1)) bad(`${name} has a bad row ${JSON.stringify(r)}`);
    const chosen = chooseSteps(m.table, t.tolerance, t.reference);
    if (m.steps !== chosen) bad(`${name}.steps is ${m.steps} but its table chooses ${chosen}`);
  }
  return t;
}

let shipped: StepTable | undefined;

/** The committed table (bundled into this package at build time), checked on first use. */
export function shippedStepTable(): StepTable {
  shipped ??= parseStepTable(table);
  return shipped;
}

/** The step count for a shipped model, and where it came from. */
export interface ShippedSampling {
  /** The steps to sample with: the table's choice, or `FALLBACK_STEPS` when `measured` is false. */
  steps: number;
  /** True when the table covers this model file (same size and sha256). */
  measured: boolean;
  /** The rows behind `steps` (empty when not measured). */
  table: readonly StepTableRow[];
  /** One sentence: why these steps (the score they keep), or why the table was refused. */
  note: string;
}

/**
 * The measured step count of shipped model `name`, given the model file's size and sha256 (lower-case
 * hex; `sha256Hex` computes it). A table measured on other bytes (the models were replaced but not the
 * table) is refused: `measured` is false, `steps` is `FALLBACK_STEPS` and `note` says what to run.
 */
export function shippedSampling(
  name: ShippedModelName,
  file: { bytes: number; sha256: string },
  t: StepTable = shippedStepTable(),
): ShippedSampling {
  const m = t.models[name];
  const fallback = (why: string): ShippedSampling => ({
    steps: FALLBACK_STEPS,
    measured: false,
    table: [],
    note: `${why}; using ${FALLBACK_STEPS} steps. Regenerate models/sampling.json with bench/step-table.mjs.`,
  });
  if (m == null) return fallback(`the step table (models/sampling.json) has no row for the ${name} model`);
  if (m.file.bytes !== file.bytes || m.file.sha256 !== file.sha256.toLowerCase()) {
    return fallback(
      `the step table was measured on another ${name}.safetensors (${m.file.bytes} bytes, sha256 ${m.file.sha256.slice(0, 12)}…; this one: ${file.bytes} bytes, ${file.sha256.slice(0, 12)}…)`,
    );
  }
  const ref = m.table.find((r) => r.steps === t.reference)!;
  const got = m.table.find((r) => r.steps === m.steps)!;
  const e = t.eval;
  return {
    steps: m.steps,
    measured: true,
    table: m.table,
    note: `${m.steps} steps: the fewest whose eval score (${got.overall.toFixed(3)}) is within ${t.tolerance} of ${t.reference} steps' (${ref.overall.toFixed(3)}); ${e.prompts} prompts, seed ${e.seed}, ${e.sampler}, cfg ${e.cfg}, on ${m.card}.`,
  };
}

/** The sha256 of `bytes` as lower-case hex, with Web Crypto (browsers in a secure context, Node ≥ 19). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle == null) throw new Error('sha256Hex needs Web Crypto (crypto.subtle): a secure context (https or localhost) in a browser.');
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}
