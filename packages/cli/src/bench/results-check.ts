/**
 * Checks and prunes the committed results files (`bench/results/*.json`) so that a script can trust
 * them and nobody edits them by hand (`node bench/results.mjs check|prune`):
 * - check: every row of every section (and of `baselines`) carries `run.commit`, a commit of this
 *   repository's history (an ancestor of HEAD), and holds timings or an `error`, never both; no note
 *   says anything was corrected "by hand".
 * - prune: drops each row that a row of a later run supersedes (the same section, key and card, and a
 *   later `run.date`), and each file left without rows.
 * An ablation file (`<date>-<card>-ablation.json`, `kind: "ablation"`, written by bench/ablation.sh) is
 * checked alike: each rung names a commit of this history and holds scores at every seed or an `error`,
 * never both; two seeds at least, so that each rung's spread can be shown. Prune leaves it alone.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASELINE_KEYS, SECTIONS, timingsOf } from './results.js';

type Row = Record<string, unknown> & { run?: { commit?: unknown; date?: unknown; card?: unknown; dirty?: unknown } };

/** The arrays of rows a results file holds: its sections and `baselines`, by name. */
function rowArrays(doc: Record<string, unknown>): [string, Row[]][] {
  const names = [...SECTIONS.map((s) => s.name), 'baselines'];
  return names.filter((n) => Array.isArray(doc[n])).map((n) => [n, doc[n] as Row[]]);
}

const keysOf = (section: string): readonly string[] => SECTIONS.find((s) => s.name === section)?.keys ?? BASELINE_KEYS;

function git(args: string[], cwd: string): { ok: boolean; out: string } {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return { ok: r.status === 0, out: (r.stdout ?? '').trim() };
}

/** The JSON files of a results folder, by name. */
export function resultsFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(dir, f));
}

/**
 * The problems of the files in `dir` (one line each; empty when every row can be trusted): a row
 * without `run.commit`, a commit that is not in the history of HEAD of the repository at `repo`, a row
 * with both an `error` and timings, a note that mentions a correction by hand, or a file that is not a
 * JSON object.
 */
export function checkResults(dir: string, repo: string): string[] {
  const problems: string[] = [];
  const known = new Map<string, boolean>();
  const inHistory = (sha: string) => {
    if (!known.has(sha)) {
      const exists = /^[0-9a-f]{7,40}$/.test(sha) && git(['cat-file', '-e', `${sha}^{commit}`], repo).ok;
      known.set(sha, exists && git(['merge-base', '--is-ancestor', sha, 'HEAD'], repo).ok);
    }
    return known.get(sha)!;
  };
  for (const file of resultsFiles(dir)) {
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
      if (doc == null || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('not a JSON object');
    } catch (err) {
      problems.push(`${file}: ${(err as Error).message}`);
      continue;
    }
    if (doc.kind === 'ablation' || file.endsWith('-ablation.json')) {
      problems.push(...ablationProblems(file, doc, inHistory));
      continue;
    }
    const text = JSON.stringify(doc.notes ?? []) + JSON.stringify(doc.note ?? '');
    if (/by hand/i.test(text)) problems.push(`${file}: a note says something was corrected by hand; results are written by the bench only`);
    for (const [section, rows] of rowArrays(doc)) {
      rows.forEach((row, i) => {
        const commit = row?.run?.commit;
        if (typeof commit !== 'string') problems.push(`${file}: ${section}[${i}] names no commit (run.commit)`);
        else if (!inHistory(commit)) problems.push(`${file}: ${section}[${i}] names commit ${commit}, which is not in the history of HEAD`);
        const timed = row != null && row.error != null ? timingsOf(row) : [];
        if (timed.length > 0) {
          problems.push(`${file}: ${section}[${i}] has an error and timings (${timed.join(', ')}); a failed point holds no timings`);
        }
      });
    }
  }
  return problems;
}

/** The problems of one ablation file (bench/ablation.sh): see the module comment. */
function ablationProblems(file: string, doc: Record<string, unknown>, inHistory: (sha: string) => boolean): string[] {
  const out: string[] = [];
  if (doc.kind !== 'ablation')
    return [`${file}: named *-ablation.json but its kind is not "ablation"; only bench/ablation.sh writes these`];
  if (!file.endsWith('-ablation.json')) out.push(`${file}: an ablation file is named <date>-<card>-ablation.json`);
  if (/by hand/i.test(JSON.stringify(doc.notes ?? [])))
    out.push(`${file}: a note says something was corrected by hand; results are written by the bench only`);
  const seeds = (doc.settings as { seeds?: unknown } | undefined)?.seeds;
  if (!Array.isArray(seeds) || seeds.length < 2) out.push(`${file}: settings.seeds lists fewer than two seeds, so no rung has a spread`);
  if (!Array.isArray(doc.rungs)) return [...out, `${file}: has no rungs list`];
  (doc.rungs as Row[]).forEach((row, i) => {
    const at = `rungs[${i}] (${String(row?.rung)})`;
    const commit = row?.run?.commit;
    if (typeof commit !== 'string') out.push(`${file}: ${at} names no commit (run.commit)`);
    else if (!inHistory(commit)) out.push(`${file}: ${at} names commit ${commit}, which is not in the history of HEAD`);
    const evals = Array.isArray(row?.evals) ? (row.evals as { seed?: unknown; overall?: unknown }[]) : null;
    if (row?.error != null && evals != null) out.push(`${file}: ${at} has an error and scores; a failed rung holds no scores`);
    if (row?.error == null) {
      const scored = evals?.every((e) => typeof e?.overall === 'number') === true;
      const seen = evals?.map((e) => e?.seed) ?? [];
      if (!scored || !Array.isArray(seeds) || JSON.stringify(seen) !== JSON.stringify(seeds)) {
        out.push(`${file}: ${at} holds neither an error nor a score for each of settings.seeds`);
      }
    }
  });
  return out;
}

/**
 * Drops the rows that a later run supersedes (same section, same key fields, same card, later
 * `run.date`) from every file in `dir`, and the files left without rows. Returns what it did, one
 * line per file; `dryRun` only reports.
 */
export function pruneResults(dir: string, dryRun = false): string[] {
  const files = resultsFiles(dir).map((file) => ({ file, doc: JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> }));
  const id = (section: string, row: Row) => JSON.stringify([section, row.run?.card ?? null, ...keysOf(section).map((k) => row[k] ?? null)]);
  const latest = new Map<string, string>();
  for (const { doc } of files) {
    for (const [section, rows] of rowArrays(doc)) {
      for (const row of rows) {
        const date = String(row.run?.date ?? '');
        const k = id(section, row);
        if ((latest.get(k) ?? '') < date) latest.set(k, date);
      }
    }
  }
  const report: string[] = [];
  for (const { file, doc } of files) {
    let dropped = 0;
    let left = 0;
    for (const [section, rows] of rowArrays(doc)) {
      const keep = rows.filter((row) => String(row.run?.date ?? '') >= (latest.get(id(section, row)) ?? ''));
      dropped += rows.length - keep.length;
      left += keep.length;
      doc[section] = keep;
    }
    if (dropped === 0) continue;
    if (left === 0) {
      report.push(`${file}: every row superseded, file removed`);
      if (!dryRun) rmSync(file);
    } else {
      report.push(`${file}: ${dropped} superseded row(s) dropped, ${left} kept`);
      if (!dryRun) {
        const tmp = `${file}.${process.pid}.tmp`;
        writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`);
        renameSync(tmp, file);
      }
    }
  }
  return report;
}
