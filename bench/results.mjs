#!/usr/bin/env node
/**
 * The only way results files change besides `t2md bench` itself (never edit them by hand):
 *
 *   node bench/results.mjs check [DIR]  every row names a commit in the history of HEAD and holds
 *                                   timings or an error, never both; no "by hand" notes (DIR: another
 *                                   results folder, checked against its own repository's history)
 *   node bench/results.mjs prune    drop rows a later run supersedes (same section, key, card), and
 *                                   files left empty; --dry-run only reports
 *
 * Run `npm run build` first (it uses the built @t2md/cli). Exit 1 when check finds a problem.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkResults, pruneResults } from '@t2md/cli';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [cmd, ...rest] = process.argv.slice(2);
const dir = join(root, 'bench', 'results');
if (cmd === 'check') {
  // git runs in the folder checked, so another folder is checked against its own repository's history
  const problems = rest[0] != null ? checkResults(resolve(rest[0]), resolve(rest[0])) : checkResults(dir, root);
  for (const p of problems) process.stderr.write(`${p}\n`);
  process.stdout.write(
    `bench/results: ${problems.length === 0 ? 'every row names a commit of this history and holds timings or an error' : `${problems.length} problem(s)`}\n`,
  );
  process.exit(problems.length === 0 ? 0 : 1);
} else if (cmd === 'prune') {
  const report = pruneResults(dir, rest.includes('--dry-run'));
  for (const line of report) process.stdout.write(`${line}\n`);
  if (report.length === 0) process.stdout.write('bench/results: nothing superseded\n');
} else {
  process.stderr.write('usage: node bench/results.mjs check [DIR] | prune [--dry-run]\n');
  process.exit(2);
}
