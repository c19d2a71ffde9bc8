#!/usr/bin/env node
/**
 * The bookkeeping of bench/ablation.sh, in Node with no dependencies (the GPU machine has only the
 * bundle's Node): every file it writes is written atomically (temp file + rename), so a call that is
 * cut off leaves whole files or none.
 *
 *   node bench/ablation-json.mjs layout TEACHER       the no-sa layout: HM-WM alternating, the teacher's depth
 *   node bench/ablation-json.mjs reached DIR          the step DIR/latest.safetensors holds (0 without one)
 *   node bench/ablation-json.mjs plan                 checks the run's settings (env) and writes OUTDIR/plan.json;
 *                                                     prints the results file's path (RESUME's rungs are imported)
 *   node bench/ablation-json.mjs ok RUNG              exit 0 when OUTDIR/RUNG/rung.json succeeded under this plan
 *   node bench/ablation-json.mjs rung                 writes OUTDIR/RUNG/rung.json from the env of one finished rung
 *   node bench/ablation-json.mjs publish [--print]    writes the results file from plan.json and every rung.json
 *
 * The results file (`<date>-<card>-ablation.json`, bench/results/README.md) is what the docs' chart, the
 * table in bench/ablation.md (apps/docs/components/ablation.ts) and `node bench/results.mjs check` read.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const LADDER = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'ablation-ladder.json'), 'utf8'));
const RUNG_NAMES = LADDER.rungs.map((r) => r.rung);
const env = process.env;

/** Bad input: one sentence on stderr, exit 2 (ablation.sh passes the code on). */
function fail(sentence) {
  process.stderr.write(`ablation.sh: ${sentence}\n`);
  process.exit(2);
}

function writeAtomic(file, text) {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}
const writeJson = (file, value) => writeAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

/** The `__metadata__` of a safetensors file, read from its header only. */
function metadata(file) {
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    if (!(n > 0 && n < 100_000_000)) throw new Error(`header length ${n}`);
    const head = Buffer.alloc(n);
    readSync(fd, head, 0, n, 8);
    return JSON.parse(head.toString()).__metadata__ ?? {};
  } finally {
    closeSync(fd);
  }
}

const words = (s) => (s ?? '').split(/\s+/).filter(Boolean);
const seeds = () => words(env.SEEDS ?? '0 1').map(Number);

/** Everything that changes a rung's scores: two rungs are comparable (and a rung is kept) only under the same plan. */
function fingerprint(p) {
  return JSON.stringify([
    p.teacher.sha256,
    p.steps,
    p.forcingSteps,
    p.prompts,
    p.evalSteps,
    p.seeds,
    p.preset,
    p.distillArgs,
    p.evalArgs,
    p.noSaLayout,
  ]);
}

const outdir = () => resolve(env.OUTDIR ?? fail('OUTDIR is not set (ablation.sh sets it).'));
const planFile = () => join(outdir(), 'plan.json');

function cmdLayout(teacher) {
  let cfg;
  try {
    cfg = JSON.parse(metadata(teacher)['t2md.config']);
  } catch {
    fail(`could not read the teacher's DiT config from ${teacher}; set NO_SA_LAYOUT.`);
  }
  const depth = cfg.depth ?? cfg.layout.split('-').length;
  process.stdout.write(`${Array.from({ length: depth }, (_, i) => (i % 2 ? 'WM' : 'HM')).join('-')}\n`);
}

/**
 * The optimiser steps DIR/latest.safetensors holds over the rung's stages: its stage's step, plus
 * FORCING_STEPS once a forcing rung has moved on to its distill stage (each stage counts from 0).
 */
function cmdReached(dir) {
  const file = join(dir, 'latest.safetensors');
  let steps = 0;
  try {
    if (existsSync(file)) {
      const { stage, step } = JSON.parse(metadata(file)['t2md.train']);
      const chained = stage === 'distill' && existsSync(join(dir, 'forcing.safetensors'));
      steps = (step ?? 0) + (chained ? Number(env.FORCING_STEPS) : 0);
    }
  } catch {
    steps = 0;
  }
  process.stdout.write(`${steps}\n`);
}

/** `t2md info --json` of the CLI the rungs run with: the card, device, backend and the source it was built from. */
function readInfo() {
  let info;
  try {
    info = readJson(env.INFO_JSON);
  } catch {
    fail(`'${env.CLI} info --json' printed no JSON (see ${env.INFO_JSON}); check the T2MD command prefix.`);
  }
  if (typeof info.card !== 'string' || info.source == null) {
    fail(`'${env.CLI} info --json' names no card or source; rebuild the CLI (npm run build, or bash bench/pack.sh on the GPU machine).`);
  }
  return info;
}

function cmdPlan() {
  const info = readInfo();
  const source = info.source;
  if ((source.dirty || source.commit == null) && env.ALLOW_DIRTY !== '1') {
    fail(
      source.commit == null
        ? 'the CLI knows no commit (not run from a checkout or a bench/pack.sh bundle); run it from one, or set ALLOW_DIRTY=1 (the results then name no commit).'
        : `the tree differs from commit ${source.commit.slice(0, 10)} (${source.from === 'bundle' ? 'when the GPU bundle was packed' : 'git status is not clean'}); commit first (then bash bench/pack.sh), or set ALLOW_DIRTY=1 (the results then record dirty: true).`,
    );
  }
  const teacherAbs = resolve(env.TEACHER);
  const rel = relative(process.cwd(), teacherAbs);
  const bytes = readFileSync(teacherAbs);
  const seedList = seeds();
  if (seedList.length < 1 || seedList.some((s) => !Number.isInteger(s) || s < 0) || new Set(seedList).size !== seedList.length) {
    fail(`SEEDS must be distinct integers >= 0 separated by spaces (two give the spread), got '${env.SEEDS}'.`);
  }
  const requested = words(env.RUNG_LIST);
  const plan = {
    date: new Date().toISOString(),
    device: info.device,
    card: info.card,
    driver: info.driver ?? null,
    backend: info.backend,
    source: { commit: source.commit, ...(source.dirty ? { dirty: true } : {}), from: source.from },
    teacher: {
      file: rel.startsWith('..') || isAbsolute(rel) ? teacherAbs : rel,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bytes: bytes.length,
    },
    steps: Number(env.STEPS),
    forcingSteps: Number(env.FORCING_STEPS),
    prompts: Number(env.PROMPTS),
    evalSteps: Number(env.EVAL_STEPS),
    seeds: seedList,
    preset: env.PRESET || null,
    distillArgs: env.DISTILL_ARGS ?? '',
    evalArgs: env.EVAL_ARGS ?? '',
    noSaLayout: env.NO_SA_LAYOUT,
    parallel: Number(env.PARALLEL),
    deadlineSeconds: env.DEADLINE ? Number(env.DEADLINE) : null,
    cli: env.CLI,
    rungs: requested,
  };
  plan.fingerprint = fingerprint(plan);
  mkdirSync(outdir(), { recursive: true });
  if (env.RESUME) importResumed(plan, env.RESUME);
  plan.resultsFile = join(resolve(env.RESULTS_DIR || outdir()), `${plan.date.slice(0, 10)}-${plan.card}-ablation.json`);
  writeJson(planFile(), plan);
  process.stdout.write(`${plan.resultsFile}\n`);
}

/**
 * RESUME: the results file of an earlier call of the same ladder. Its finished rungs become this run's
 * OUTDIR/<rung>/rung.json (so they are kept, not run again); the file's date names the results file.
 * A file of another plan (teacher, steps, prompts, seeds, flags) is refused: its rungs would not compare.
 */
function importResumed(plan, file) {
  let prev;
  try {
    prev = readJson(file);
  } catch (err) {
    fail(`RESUME=${file} is not a readable JSON file (${err.message}); pass the *-ablation.json an earlier call wrote.`);
  }
  if (prev?.kind !== 'ablation' || !Array.isArray(prev.rungs) || prev.settings == null) {
    fail(
      `RESUME=${file} is not an ablation results file (no kind "ablation" with settings and rungs); pass the *-ablation.json an earlier call wrote.`,
    );
  }
  const theirs = fingerprint({ ...prev.settings, teacher: prev.teacher ?? {} });
  if (theirs !== plan.fingerprint) {
    const diff = ['steps', 'forcingSteps', 'prompts', 'evalSteps', 'seeds', 'preset', 'distillArgs', 'evalArgs', 'noSaLayout']
      .filter((k) => JSON.stringify(prev.settings[k] ?? null) !== JSON.stringify(plan[k] ?? null))
      .concat(prev.teacher?.sha256 !== plan.teacher.sha256 ? ['teacher (sha256)'] : []);
    fail(
      `RESUME=${file} was run under other settings (${diff.join(', ') || 'its plan'} differ); run with the same settings or without RESUME.`,
    );
  }
  if (prev.card !== plan.card)
    fail(
      `RESUME=${file} was measured on ${prev.card}, this run is on ${plan.card}; GPU-minutes would not compare, so resume on the same card.`,
    );
  plan.date = prev.date;
  plan.resumedFrom = file;
  for (const r of prev.rungs) {
    if (r.error != null || !RUNG_NAMES.includes(r.rung)) continue;
    const target = join(outdir(), r.rung, 'rung.json');
    if (existsSync(target) && env.RERUN !== '1') continue; // a rung of this folder is as good, and has its logs
    writeJson(target, { ...r, plan: plan.fingerprint, resumed: true });
  }
}

function cmdOk(rung) {
  const plan = readJson(planFile());
  try {
    const r = readJson(join(outdir(), rung, 'rung.json'));
    const scored = Array.isArray(r.evals) && r.evals.length === plan.seeds.length && r.evals.every((e) => typeof e.overall === 'number');
    process.exit(r.error == null && scored && r.plan === plan.fingerprint ? 0 : 1);
  } catch {
    process.exit(1);
  }
}

/** The command lines as a user would type them: `t2md` for the CLI prefix, paths inside OUTDIR relative to it. */
function userCommand(line, plan) {
  return line.split(`${outdir()}/`).join('').split(plan.cli).join('t2md').trim();
}

function cmdRung() {
  const plan = readJson(planFile());
  const dir = join(outdir(), env.RUNG);
  const read = (f) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');
  const lines = (f) => read(f).split('\n').filter(Boolean);
  const commands = lines('commands.txt').map((l) => userCommand(l, plan));
  const evalCommands = lines('eval-commands.txt').map((l) => userCommand(l, plan));
  const evals = [];
  const errors = [];
  const trainRc = Number(env.RC);
  if (trainRc !== 0) errors.push(`training exited ${trainRc} (see ${env.RUNG}/train.log)`);
  const target = env.RUNG === 'teacher' ? 0 : plan.steps;
  const reached = Number(env.REACHED ?? target);
  if (trainRc === 0 && reached < target)
    errors.push(`stopped at the deadline at step ${reached} of ${target}; run the ladder again (RESUME) to redo it`);
  for (const seed of errors.length === 0 ? plan.seeds : []) {
    try {
      const ev = JSON.parse(read(`eval-${seed}.json`));
      if (typeof ev.overall !== 'number' || ev.categories == null) throw new Error('no scores');
      evals.push({ seed, overall: ev.overall, categories: ev.categories, prompts: ev.prompts });
    } catch {
      errors.push(`t2md eval --seed ${seed} printed no scores (see ${env.RUNG}/eval-${seed}.log)`);
    }
  }
  const last = lines('metrics.jsonl')
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return null;
      }
    })
    .filter(Boolean)
    .pop();
  const trainSeconds = Number((env.T1 - env.T0).toFixed(1));
  const evalSeconds = Number((env.T2 - env.T1).toFixed(1));
  const paper = LADDER.rungs.find((r) => r.rung === env.RUNG)?.paper ?? null;
  const rung = {
    rung: env.RUNG,
    paperGenEval: paper,
    run: {
      commit: plan.source.commit,
      ...(plan.source.dirty ? { dirty: true } : {}),
      date: new Date().toISOString(),
      card: plan.card,
      device: plan.device,
      driver: plan.driver,
      backend: plan.backend,
    },
    teacher: plan.teacher,
    steps: target,
    ...(env.RUNG === 'teacher' ? {} : { forcingSteps: ['forcing', 'uni', 'no-sa'].includes(env.RUNG) ? plan.forcingSteps : 0 }),
    commands,
    evalCommands,
    trainSeconds,
    evalSeconds,
    gpuMinutes: Number(((trainSeconds + evalSeconds) / 60).toFixed(2)),
    finalLoss: last?.loss ?? null,
    ...(errors.length > 0 ? { error: errors.join('; ') } : { evals }),
    plan: plan.fingerprint,
  };
  writeJson(join(dir, 'rung.json'), rung);
}

/** The results document: the plan's settings and every rung that finished, in the ladder's order. */
function buildDoc(plan) {
  const rungs = [];
  for (const name of RUNG_NAMES) {
    const f = join(outdir(), name, 'rung.json');
    if (!existsSync(f)) continue;
    const { plan: fp, ...r } = readJson(f);
    if (fp !== plan.fingerprint) continue; // a leftover of another plan in the same folder
    rungs.push(r);
  }
  const teacher = rungs.find((r) => r.rung === 'teacher' && r.evals);
  return {
    kind: 'ablation',
    date: plan.date,
    device: plan.device,
    card: plan.card,
    driver: plan.driver,
    backend: plan.backend,
    commit: plan.source.commit,
    ...(plan.source.dirty ? { dirty: true } : {}),
    teacher: { ...plan.teacher, ...(teacher ? { evals: teacher.evals } : {}) },
    paper: { source: LADDER.source },
    settings: {
      steps: plan.steps,
      forcingSteps: plan.forcingSteps,
      prompts: plan.prompts,
      evalSteps: plan.evalSteps,
      seeds: plan.seeds,
      preset: plan.preset,
      distillArgs: plan.distillArgs,
      evalArgs: plan.evalArgs,
      noSaLayout: plan.noSaLayout,
      parallel: plan.parallel,
      rungs: plan.rungs,
    },
    rungs,
    notes: [
      'Each rung: t2md distill (the commands, paths relative to the ladder folder) then t2md eval once per seed; --seed draws both the prompt set and the sampling noise, so the two scores differ by the evaluation alone.',
      `gpuMinutes: wall time of the rung's own training and eval processes, ${plan.parallel} rung(s) at a time sharing one GPU.`,
      ...(plan.deadlineSeconds
        ? [
            `The distill calls also got --time-limit (the call's deadline, ${plan.deadlineSeconds} s); a rung that reached its steps was not affected.`,
          ]
        : []),
    ],
  };
}

const f3 = (x) => (typeof x === 'number' ? x.toFixed(3) : '  -  ');

function cmdPublish(print) {
  const plan = readJson(planFile());
  const doc = buildDoc(plan);
  writeJson(plan.resultsFile, doc);
  if (!print) return;
  const lines = ['rung          seeds            paper  train s'];
  for (const r of doc.rungs) {
    const scores = r.evals ? r.evals.map((e) => f3(e.overall)).join(' / ') : 'FAILED';
    lines.push(`${r.rung.padEnd(12)}  ${scores.padEnd(15)}  ${f3(r.paperGenEval)}  ${r.trainSeconds}`);
  }
  lines.push(`wrote ${plan.resultsFile}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

const [cmd, arg] = process.argv.slice(2);
if (cmd === 'layout') cmdLayout(arg);
else if (cmd === 'reached') cmdReached(arg);
else if (cmd === 'plan') cmdPlan();
else if (cmd === 'ok') cmdOk(arg);
else if (cmd === 'rung') cmdRung();
else if (cmd === 'publish') cmdPublish(arg === '--print');
else fail(`bench/ablation-json.mjs knows no command '${cmd ?? ''}'; use layout, reached, plan, ok, rung or publish.`);
