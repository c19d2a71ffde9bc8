/**
 * Output paths are checked before any work (a training run, a sampling, a benchmark), so that one that
 * cannot be written is refused at once in one sentence naming the path as given, not after the work
 * with a raw error naming a temporary file. Nothing is created: the check walks up to the nearest
 * existing ancestor and makes (then removes) one empty folder there. Node's
 * `mkdirSync(path, {recursive: true})` must never see a path that fails this check: under /proc it spins
 * forever (mkdir answers ENOENT, the parent exists, it tries again), deaf to SIGINT and SIGTERM.
 */
import { lstatSync, mkdtempSync, rmdirSync, type Stats, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from './errors.js';

/** `stat` (or `lstat`) that answers undefined for a path that does not exist, including one below a file (ENOTDIR). */
function statOf(path: string, link = false): Stats | undefined {
  try {
    return link ? lstatSync(path) : statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Why `dir` refused a new entry, as words for the middle of a sentence. */
function refusal(dir: string, code: string | undefined): string {
  if (code === 'EACCES' || code === 'EPERM') return `you may not write in ${dir} (${code})`;
  if (code === 'EROFS') return `${dir} is on a read-only file system`;
  if (code === 'ENOSPC' || code === 'EDQUOT') return `${dir} has no space left (${code})`;
  return `${dir} takes no new files (${code ?? 'unknown error'})`;
}

/** Undefined when a folder can be created in the existing folder `dir`, else why not. */
function cannotCreateIn(dir: string): string | undefined {
  let probe: string;
  try {
    probe = mkdtempSync(join(dir, '.t2md-check-'));
  } catch (err) {
    return refusal(dir, (err as NodeJS.ErrnoException).code);
  }
  rmdirSync(probe);
  return undefined;
}

/**
 * Undefined when the folder `abs` exists or can be made (every missing part of it created in turn),
 * else why not: the nearest existing ancestor is a file, a link points nowhere, or that ancestor takes
 * no new folders.
 */
function cannotMakeFolder(abs: string): string | undefined {
  let p = abs;
  for (let st = statOf(p); st == null; st = statOf(p)) {
    if (statOf(p, true) != null) return `${p} is a link to nothing`;
    p = dirname(p);
  }
  if (!statSync(p).isDirectory()) return `${p} is a file, not a folder`;
  return cannotCreateIn(p);
}

/**
 * Checks `flag`'s folder (`--out DIR` of train, distill, demo) before any work: it exists or can be
 * made, and files can be written in it. Returns its absolute path; otherwise a UsageError naming
 * `given` (exit 2).
 */
export function checkOutDir(flag: string, given: string): string {
  const abs = resolve(given);
  const st = statOf(abs);
  if (st != null && !st.isDirectory()) {
    throw new UsageError(`${flag} ${given} is a file, not a folder; pass a folder (it is made if missing).`);
  }
  const why = st != null ? cannotCreateIn(abs) : cannotMakeFolder(abs);
  if (why != null) {
    const what = st != null ? 'cannot be written in' : 'cannot be made';
    throw new UsageError(`${flag} ${given} ${what}: ${why}; pass a folder you can write in.`);
  }
  return abs;
}

/**
 * Checks `flag`'s file (`--out FILE.png` of sample, `--out FILE` of bench) before any work: it is not a
 * folder, and its folder exists or can be made and takes new files (files are written beside the
 * target, then renamed over it). Returns its absolute path; otherwise a UsageError naming `given`.
 */
export function checkOutFile(flag: string, given: string): string {
  const abs = resolve(given);
  const st = statOf(abs);
  if (st?.isDirectory()) throw new UsageError(`${flag} ${given} is a folder, not a file; pass a file path.`);
  const dir = dirname(abs);
  const why = statOf(dir)?.isDirectory() ? cannotCreateIn(dir) : cannotMakeFolder(dir);
  if (why != null) throw new UsageError(`${flag} ${given} cannot be written: ${why}; pass a path in a folder you can write in.`);
  return abs;
}
