#!/usr/bin/env node
/**
 * The only way results files change besides `t2md bench` itself (never edit them by hand):
 *
 *   node bench/results.mjs check    every row names a commit in the history of HEAD; no "by hand" notes
 *   node bench/results.mjs prune    drop rows a later run supersedes (same section, key, card), and
 *                                   files left empty; --dry-run only reports
 *
 * Run `npm run build` first (it uses the built @t2md/cli). Exit 1 when check finds a problem.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkResults, pruneResults } from '@t2md/cli';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'bench', 'results');
const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'check') {
  const problems = checkResults(dir, root);
  for (const p of problems) process.stderr.write(`${p}\n`);
  process.stdout.write(
    `bench/results: ${problems.length === 0 ? 'every row names a commit of this history' : `${problems.length} problem(s)`}\n`,
  );
  process.exit(problems.length === 0 ? 0 : 1);
} else if (cmd === 'prune') {
  const report = pruneResults(dir, rest.includes('--dry-run'));
  for (const line of report) process.stdout.write(`${line}\n`);
  if (report.length === 0) process.stdout.write('bench/results: nothing superseded\n');
} else {
  process.stderr.write('usage: node bench/results.mjs check | prune [--dry-run]\n');
  process.exit(2);
}
