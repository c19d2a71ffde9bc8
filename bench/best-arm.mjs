#!/usr/bin/env node
/**
 * Prints the label of the arm with the highest mean overall score in an evals.jsonl that
 * bench/gpu-evals.sh wrote (20-step rows, every seed the file holds for that label), so that a second
 * GPU call can continue the better arm of the first without waiting for a person to read the table:
 *
 *   b=$(bash .gpu/run.sh node bench/best-arm.mjs /root/keep/evals.jsonl) || exit 2
 *
 * Labels with fewer seeds than the most-evaluated label are skipped (a cut-off eval must not win on one
 * lucky seed). A missing, empty or malformed file exits 2 with one sentence on stderr.
 */
import { readEvalRows } from './eval-rows.mjs';

function fail(msg) {
  process.stderr.write(`best-arm: ${msg}.\n`);
  process.exit(2);
}

const file = process.argv[2];
if (file == null) fail('give the evals.jsonl to read, e.g. node bench/best-arm.mjs evals.jsonl');
/** @type {Map<string, number[]>} label → overall scores at 20 steps */
const byLabel = new Map();
for (const row of readEvalRows(file, fail)) {
  if (row.steps === 20) byLabel.set(row.label, [...(byLabel.get(row.label) ?? []), row.overall]);
}
if (byLabel.size === 0) fail(`${file} has no 20-step eval rows; run bench/gpu-evals.sh first`);
const most = Math.max(...[...byLabel.values()].map((s) => s.length));
const ranked = [...byLabel]
  .filter(([, s]) => s.length === most)
  .map(([label, s]) => ({ label, mean: s.reduce((a, b) => a + b, 0) / s.length }))
  .sort((a, b) => b.mean - a.mean);
for (const r of ranked) process.stderr.write(`best-arm: ${r.label} mean ${r.mean.toFixed(4)} over ${most} seed(s)\n`);
process.stdout.write(`${ranked[0].label}\n`);
