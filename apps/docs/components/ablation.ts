/**
 * The paper's ablation ladder as measured here: what the benchmarks page charts and what
 * bench/ablation.md tabulates, both from the newest `bench/results/<date>-<card>-ablation.json` (written
 * by bench/ablation.sh). Pure functions of that file, so the page, the table and the JSON cannot drift
 * apart (apps/docs/test/ablation.test.ts checks the table; `T2MD_WRITE_ABLATION=1` rewrites it).
 *
 * Each rung is scored at two seeds (or more); its spread is max − min of those scores. Two rungs whose
 * means differ by no more than the larger of their spreads read "no measurable difference": a ranking
 * needs a difference the evaluation's own noise does not explain.
 */
import ladder from '../../../bench/ablation-ladder.json';
import type { ResultFile } from './bench-summary';

/** One rung of the paper's table: our rung name, its row there, the paper's GenEval, the rung it adds to. */
export interface LadderRung {
  rung: string;
  label: string;
  paper: number;
  vs: string | null;
}
export const LADDER: readonly LadderRung[] = ladder.rungs;
export const PAPER_SOURCE: string = ladder.source;

/** The six GenEval-style categories (t2md eval's keys), with their headers. */
export const CATEGORIES: readonly [string, string][] = [
  ['singleObject', 'single object'],
  ['twoObjects', 'two objects'],
  ['counting', 'counting'],
  ['colors', 'colors'],
  ['position', 'position'],
  ['colorAttribution', 'color attribution'],
];

interface Eval {
  seed: number;
  overall: number;
  categories: Record<string, number>;
}
interface RungRecord {
  rung: string;
  evals?: Eval[];
  error?: string;
  steps?: number;
  forcingSteps?: number;
  gpuMinutes?: number;
  trainSeconds?: number;
  evalSeconds?: number;
  commands?: string[];
  evalCommands?: string[];
  run?: { commit?: string | null };
}

/** A rung as the table and the chart show it. */
export interface RungStat extends LadderRung {
  /** One overall score per seed (the file's seed order), or null when the rung has none. */
  scores: number[] | null;
  seeds: number[];
  mean: number | null;
  /** max − min of `scores`. */
  spread: number | null;
  /** Per category, one score per seed. */
  categories: Record<string, number[]>;
  /** Why there are no scores: not run, or the rung's error. */
  missing?: string;
  record?: RungRecord;
}

/** A rung against the rung it adds to (the ladder's `vs`). */
export interface Reading {
  /** Our mean minus theirs, or null when either has no scores. */
  ours: number | null;
  paper: number;
  /** The larger of the two rungs' spreads. */
  spread: number | null;
  text: '' | 'higher' | 'lower' | 'no measurable difference';
}

const isAblation = (f: ResultFile) => f.name.endsWith('-ablation') && f.data.kind === 'ablation';

/** The newest ablation file (names are `<date>-<card>-ablation`), or null when none is committed. */
export function newestAblation(files: ResultFile[]): ResultFile | null {
  return files.filter(isAblation).sort((a, b) => b.name.localeCompare(a.name))[0] ?? null;
}

/** Every rung of the ladder, in the paper's order, with our scores where the file has them. */
export function rungStats(file: ResultFile | null): RungStat[] {
  const rungs = (file?.data.rungs ?? []) as RungRecord[];
  return LADDER.map((l) => {
    const record = rungs.find((r) => r.rung === l.rung);
    const evals = record?.error == null && Array.isArray(record?.evals) && record.evals.length > 0 ? record.evals : null;
    if (evals == null) {
      const missing = record == null ? 'not run' : `failed: ${record.error ?? 'no scores'}`;
      return { ...l, scores: null, seeds: [], mean: null, spread: null, categories: {}, missing, ...(record ? { record } : {}) };
    }
    const scores = evals.map((e) => e.overall);
    const categories = Object.fromEntries(CATEGORIES.map(([k]) => [k, evals.map((e) => e.categories?.[k] ?? Number.NaN)]));
    return {
      ...l,
      scores,
      seeds: evals.map((e) => e.seed),
      mean: scores.reduce((a, b) => a + b, 0) / scores.length,
      spread: Math.max(...scores) - Math.min(...scores),
      categories,
      record,
    };
  });
}

/** `stat` against the rung it adds to: the two differences and our reading of ours. */
export function reading(stat: RungStat, stats: RungStat[]): Reading | null {
  const base = stats.find((s) => s.rung === stat.vs);
  if (base == null) return null;
  const paper = stat.paper - base.paper;
  if (stat.mean == null || base.mean == null) return { ours: null, paper, spread: null, text: '' };
  const ours = stat.mean - base.mean;
  const spread = Math.max(stat.spread ?? 0, base.spread ?? 0);
  // 1e-9: a difference equal to the spread, up to float rounding, is not one
  const text = Math.abs(ours) <= spread + 1e-9 ? 'no measurable difference' : ours > 0 ? 'higher' : 'lower';
  return { ours, paper, spread, text };
}

/** The full T2MD rung's mean over the teacher's (the issue asks for at least 0.9), or null. */
export function teacherShare(stats: RungStat[]): number | null {
  const t2md = stats.find((s) => s.rung === 'forcing')?.mean;
  const teacher = stats.find((s) => s.rung === 'teacher')?.mean;
  return t2md != null && teacher != null && teacher > 0 ? t2md / teacher : null;
}

const f3 = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? '—' : x.toFixed(3));
const signed = (x: number | null) => (x == null ? '—' : `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`);
const name = (s: LadderRung) => `${s.label} (\`${s.rung}\`)`;

/**
 * bench/ablation.md's generated block: the ladder beside the paper, the 90% check, per-category scores,
 * each rung's steps, GPU-minutes and commit, and the commands that reproduce it. Without a file it says
 * that no GPU run exists yet and shows the paper's column alone.
 */
export function ablationMarkdown(file: ResultFile | null): string {
  const stats = rungStats(file);
  const out: string[] = [];
  const d = file?.data as
    | {
        device?: string;
        commit?: string;
        teacher?: { file?: string; sha256?: string };
        settings?: { steps?: number; forcingSteps?: number; prompts?: number; evalSteps?: number; seeds?: number[]; distillArgs?: string };
      }
    | undefined;
  if (file == null || d == null) {
    out.push(
      '**No GPU run exists yet.** No `bench/results/*-ablation.json` is committed, so the columns of our scores are empty; the plan below says which device calls fill them.',
    );
  } else {
    const s = d.settings ?? {};
    const seeds = s.seeds ?? [];
    out.push(
      `From [\`bench/results/${file.name}.json\`](results/${file.name}.json): ${d.device ?? 'unknown device'}, commit \`${String(d.commit ?? '?').slice(0, 10)}\`, ` +
        `teacher \`${d.teacher?.file ?? '?'}\` (sha256 \`${String(d.teacher?.sha256 ?? '?').slice(0, 12)}\`). ` +
        `${s.steps} optimiser steps a rung (forcing, uni and no-sa: ${s.forcingSteps} of them teacher forcing)${s.distillArgs ? `, distill flags \`${s.distillArgs}\`` : ''}; ` +
        `\`t2md eval\` on ${s.prompts} prompts with ${s.evalSteps} sampling steps at seeds ${seeds.join(' and ')}.`,
    );
  }
  out.push(
    '',
    `| rung | paper | ours, seed ${stats.find((x) => x.seeds.length > 0)?.seeds.join(' / ') ?? '0 / 1'} | ours, mean | spread | against | Δ ours | Δ paper | reading |`,
  );
  out.push('|---|---|---|---|---|---|---|---|---|');
  for (const st of stats) {
    const r = reading(st, stats);
    const ours = st.scores ? st.scores.map(f3).join(' / ') : (st.missing ?? '—');
    out.push(
      `| ${name(st)} | ${f3(st.paper)} | ${file ? ours : '—'} | ${f3(st.mean)} | ${f3(st.spread)} | ${st.vs ? `\`${st.vs}\`` : ''} | ${r ? signed(r.ours) : ''} | ${r ? signed(r.paper) : ''} | ${r?.text ?? ''} |`,
    );
  }
  out.push(
    '',
    '"Δ" is the rung\'s mean minus the mean of the rung it is compared against; "spread" is the gap between its seeds. A difference no larger than the larger spread of the two reads "no measurable difference", not a ranking.',
  );
  if (file == null) return out.join('\n');

  const share = teacherShare(stats);
  const t2md = stats.find((s) => s.rung === 'forcing');
  const teacher = stats.find((s) => s.rung === 'teacher');
  out.push(
    '',
    share == null
      ? 'The full T2MD rung (`forcing`) and the teacher are not both scored yet, so the issue\'s "≥ 90% of the teacher" is not settled.'
      : `The full T2MD rung (\`forcing\`) reaches **${(share * 100).toFixed(0)}%** of its teacher (${f3(t2md?.mean)} / ${f3(teacher?.mean)}); the issue asks for at least 90%: ${share >= 0.9 ? 'met' : '**not met**'}.`,
  );
  const notHelping = stats.filter((s) => {
    const r = reading(s, stats);
    return s.rung !== 'teacher' && r != null && r.paper > 0 && (r.text === 'lower' || r.text === 'no measurable difference');
  });
  if (notHelping.length > 0) {
    out.push(
      '',
      `Rungs that help in the paper but not measurably here: ${notHelping.map((s) => `\`${s.rung}\``).join(', ')}. Below the table, "Where we differ from the paper" says why they may.`,
    );
  }

  out.push('', `Per category (seed ${stats.find((x) => x.seeds.length > 0)?.seeds.join(' / ') ?? ''}):`, '');
  out.push(`| rung | ${CATEGORIES.map(([, h]) => h).join(' | ')} |`, `|---|${CATEGORIES.map(() => '---|').join('')}`);
  for (const st of stats.filter((x) => x.scores)) {
    out.push(
      `| \`${st.rung}\` | ${CATEGORIES.map(([k]) => (st.categories[k] ?? []).map((v) => (Number.isFinite(v) ? v.toFixed(2) : '—')).join(' / ')).join(' | ')} |`,
    );
  }

  out.push('', '| rung | steps | GPU-minutes (training + eval) | commit |', '|---|---|---|---|');
  for (const st of stats.filter((x) => x.record)) {
    const r = st.record!;
    const minutes =
      r.gpuMinutes != null
        ? `${r.gpuMinutes.toFixed(1)} (${((r.trainSeconds ?? 0) / 60).toFixed(1)} + ${((r.evalSeconds ?? 0) / 60).toFixed(1)})`
        : '—';
    out.push(`| \`${st.rung}\` | ${r.steps ?? '—'} | ${minutes} | \`${String(r.run?.commit ?? '?').slice(0, 10)}\` |`);
  }

  out.push('', 'The commands of each rung (paths relative to the ladder folder; the teacher as given):', '', '```sh');
  for (const st of stats.filter((x) => x.scores)) {
    out.push(`# ${st.rung}`, ...(st.record!.commands ?? []), ...(st.record!.evalCommands ?? []));
  }
  out.push('```');
  return out.join('\n');
}
