#!/usr/bin/env node
/**
 * Writes packages/shapes/models/sampling.json, the measured step table of the shipped models: for each
 * model, `t2md eval --json` at each step count (same prompts, seed, sampler, cfg and batch), and the
 * step count the demo, the playground and `t2md sample` use — the fewest steps whose overall score is
 * within --tolerance of the score at --reference steps (eval's default, 20). Never edit the file by hand.
 *
 * After replacing teacher.safetensors / student.safetensors, on the GPU machine (from the repository root,
 * after `npm run build`):
 *
 *   node bench/step-table.mjs --models teacher,student --steps 6,8,10,12,15,20 --prompts 200 --backend webgpu
 *
 * then `npm run build` again (the table is bundled into @t2md/shapes and the docs site) and commit
 * sampling.json. Options (defaults in brackets): --models [teacher,student], --steps [6,8,10,12,15,20],
 * --prompts [200], --seed [0], --sampler [dpmpp-2m], --cfg [4.5], --batch [25], --tolerance [0.02],
 * --reference [20], --backend [auto], --out [packages/shapes/models/sampling.json]. Each model is hashed
 * (size and sha256) so a table left from other weights is refused by its readers.
 *
 * Or, from the evals a GPU call already ran (bench/gpu-evals.sh writes them, one JSON line each, with
 * the model file's sha256), without running any eval here:
 *
 *   node bench/step-table.mjs --rows evals.jsonl [--pick teacher=t1,student=mx] [--models ...]
 *
 * which takes each model's seed-0 rows (of the label --pick names, when the file holds several), checks
 * that they were made from the file now in packages/shapes/models/ (sha256) with the table's settings,
 * and writes the same table (eval.backend and card say where they ran; commit is this checkout's HEAD).
 *
 * Only the models measured are replaced; other models' entries stay when their eval settings match. The
 * file is written atomically (temp file + rename) once every eval has finished; an eval that fails stops
 * the script (exit 1) and leaves the file as it was.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chooseSteps, parseStepTable, sha256Hex } from '@t2md/shapes';
import { readEvalRows } from './eval-rows.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages', 'cli', 'dist', 'bin.js');
const modelsDir = join(root, 'packages', 'shapes', 'models');

const args = process.argv.slice(2);
const usage = (msg) => {
  process.stderr.write(
    `step-table: ${msg}\nusage: node bench/step-table.mjs [--models teacher,student] [--steps 6,8,10,12,15,20] [--prompts 200] [--seed 0] [--sampler dpmpp-2m] [--cfg 4.5] [--batch 25] [--tolerance 0.01] [--reference 20] [--backend auto] [--out FILE] [--rows evals.jsonl [--pick teacher=LABEL,student=LABEL]]\n`,
  );
  process.exit(2);
};
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  if (args[i + 1] == null) usage(`--${name} needs a value`);
  return args[i + 1];
};
for (const a of args)
  if (
    a.startsWith('--') &&
    !['models', 'steps', 'prompts', 'seed', 'sampler', 'cfg', 'batch', 'tolerance', 'reference', 'backend', 'out', 'rows', 'pick'].includes(
      a.slice(2),
    )
  )
    usage(`unknown option ${a}`);
const int = (name, fallback) => {
  const v = Number(opt(name, fallback));
  if (!Number.isInteger(v) || v < 0) usage(`--${name} must be a whole number`);
  return v;
};
const models = opt('models', 'teacher,student').split(',');
for (const m of models) if (m !== 'teacher' && m !== 'student') usage(`--models takes teacher and/or student, not ${m}`);
const reference = int('reference', '20');
const steps = [...new Set([...opt('steps', '6,8,10,12,15,20').split(',').map(Number), reference])].sort((a, b) => a - b);
if (steps.some((s) => !Number.isInteger(s) || s < 1)) usage('--steps must be whole numbers ≥ 1, comma-separated');
const evalSettings = {
  prompts: int('prompts', '200'),
  seed: int('seed', '0'),
  sampler: opt('sampler', 'dpmpp-2m'),
  cfg: Number(opt('cfg', '4.5')),
  batch: int('batch', '25'),
  backend: opt('backend', 'auto'),
};
const tolerance = Number(opt('tolerance', '0.02'));
if (!(tolerance >= 0)) usage('--tolerance must be a number ≥ 0');
const out = opt('out', join(modelsDir, 'sampling.json'));
const rowsFile = opt('rows', undefined);
const pick = Object.fromEntries(
  (opt('pick', '') || '')
    .split(',')
    .filter(Boolean)
    .map((kv) => kv.split('=')),
);
const measured = rowsFile == null ? undefined : readEvalRows(rowsFile, (msg) => usage(`--rows: ${msg}`));
if (measured == null && !existsSync(bin)) usage(`${relative(root, bin)} is missing; run npm run build first`);

const t2md = (argv) =>
  execFileSync(process.execPath, [bin, ...argv], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
let card;
let commit;
if (measured == null) {
  const info = JSON.parse(t2md(['info', '--json', '--backend', evalSettings.backend]));
  evalSettings.backend = info.backend; // what auto took
  card = info.backend === 'wasm' || info.backend === 'cpu' ? `${info.device}` : `${info.card} (${info.backend})`;
  commit = `${info.source?.commit ?? 'unknown'}${info.source?.dirty ? ' (dirty)' : ''}`;
} else {
  const backends = [...new Set(measured.map((r) => r.backend))];
  const cards = [...new Set(measured.map((r) => r.card))];
  if (backends.length !== 1 || cards.length !== 1)
    usage(`${rowsFile} mixes backends or cards (${backends}, ${cards}); give one call's rows`);
  evalSettings.backend = backends[0];
  card = `${cards[0]} (${backends[0]})`;
  commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
}

/** The shapes preset's image size in px, which `t2md eval` uses without `--size`. */
const TRAINED_SIZE = 32;

/** The measured rows of `name` at the table's settings, one per step count, from this file's bytes. */
function rowsFor(name, sha256) {
  const mine = measured.filter(
    (r) =>
      r.role === name &&
      (pick[name] == null || r.label === pick[name]) &&
      r.seed === evalSettings.seed &&
      r.prompts === evalSettings.prompts &&
      r.sampler === evalSettings.sampler &&
      r.cfg === evalSettings.cfg &&
      r.batch === evalSettings.batch &&
      // the table is for the size the shipped models were trained at, eval's default; gpu-evals.sh's SIZE=64 rows are not
      (r.settings?.size ?? TRAINED_SIZE) === TRAINED_SIZE,
  );
  const labels = [...new Set(mine.map((r) => r.label))];
  if (labels.length !== 1)
    usage(
      `${rowsFile} has ${labels.length === 0 ? 'no' : 'several'} ${name} rows at these settings (${labels.join(', ')}); name one with --pick ${name}=LABEL`,
    );
  if (mine.some((r) => r.sha256 !== sha256))
    usage(
      `the ${name} rows of ${rowsFile} were measured on another file than packages/shapes/models/${name}.safetensors (sha256 differs); copy that model there first`,
    );
  return steps.map((s) => {
    const r = mine.find((m) => m.steps === s);
    if (r == null) usage(`${rowsFile} has no ${name} row at ${s} steps (label ${labels[0]}); pass --steps with the step counts it has`);
    return { steps: s, overall: r.overall };
  });
}

const table = existsSync(out) ? parseStepTable(JSON.parse(readFileSync(out, 'utf8'))) : undefined;
const sameEval = table != null && JSON.stringify(table.eval) === JSON.stringify(evalSettings);
const file = {
  schema: 1,
  tolerance,
  reference,
  eval: evalSettings,
  // another eval's entries cannot share the file: its rows would not be comparable
  models: sameEval && table.tolerance === tolerance && table.reference === reference ? { ...table.models } : {},
  command: `node bench/step-table.mjs ${rowsFile != null ? '--rows <gpu-evals.sh output> ' : ''}--steps ${steps.join(',')} --prompts ${evalSettings.prompts} --seed ${evalSettings.seed} --sampler ${evalSettings.sampler} --cfg ${evalSettings.cfg} --batch ${evalSettings.batch} --tolerance ${tolerance} --reference ${reference} --backend ${evalSettings.backend}`,
};

for (const name of models) {
  const path = join(modelsDir, `${name}.safetensors`);
  if (!existsSync(path)) usage(`${relative(root, path)} does not exist`);
  const bytes = readFileSync(path);
  const sha256 = await sha256Hex(bytes);
  const rows = measured == null ? [] : rowsFor(name, sha256);
  for (const s of measured == null ? steps : []) {
    const t0 = Date.now();
    const argv = ['eval', '--model', name, '--json', '--steps', String(s), '--prompts', String(evalSettings.prompts)];
    argv.push('--seed', String(evalSettings.seed), '--sampler', evalSettings.sampler, '--cfg', String(evalSettings.cfg));
    argv.push('--batch', String(evalSettings.batch), '--backend', evalSettings.backend);
    let report;
    try {
      report = JSON.parse(t2md(argv));
    } catch (err) {
      process.stderr.write(
        `step-table: t2md ${argv.join(' ')} failed (${err.message.split('\n')[0]}); ${relative(root, out)} is unchanged.\n`,
      );
      process.exit(1);
    }
    rows.push({ steps: s, overall: report.overall });
    process.stdout.write(
      `${name} ${String(s).padStart(3)} steps: ${report.overall.toFixed(3)} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`,
    );
  }
  const chosen = chooseSteps(rows, tolerance, reference);
  file.models[name] = {
    file: { bytes: bytes.length, sha256 },
    steps: chosen,
    table: rows,
    card,
    commit,
    date: new Date().toISOString().slice(0, 10),
  };
  process.stdout.write(`${name}: ${chosen} steps\n`);
}

parseStepTable(file); // what the readers accept, or throw before writing
const tmp = `${out}.${process.pid}.tmp`;
writeFileSync(tmp, `${JSON.stringify(file, null, 2)}\n`);
renameSync(tmp, out);
process.stdout.write(`wrote ${relative(root, out)}; run npm run build to bundle it\n`);
