/**
 * Output paths are checked before any work (a training run, a sampling, a benchmark), so that one that
 * cannot be written is refused at once in one sentence naming the path as given, not after the work
 * with a raw error naming a temporary file. Nothing is created: the check walks up to the nearest
 * existing ancestor and makes (then removes) one empty folder there. Node's
 * `mkdirSync(path, {recursive: true})` must never see a path that fails this check: under /proc it spins
 * forever (mkdir answers ENOENT, the parent exists, it tries again), deaf to SIGINT and SIGTERM.
 *
 * The walk takes the path's string apart as that mkdir does (dirname after dirname, each resolved by
 * the kernel), never normalised first: `link/../x` is x beside the link's target, not `./x`, so a
 * lexical `resolve` would check one folder and let mkdir spin in another (`proc/../x` with
 * `proc -> /proc/self` hung).
 */
import { lstatSync, mkdtempSync, realpathSync, rmdirSync, type Stats, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UsageError } from './errors.js';

/** Why an output path cannot be, as words for the middle of the CLI's sentence. */
class CannotWrite extends Error {}

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
 * Where a recursive mkdir of `path` would start: its nearest existing ancestor, reached as
 * `mkdirSync(path, {recursive: true})` reaches it (dirname of the string as given, the kernel resolving
 * each), as a real path (links and `..` resolved by the kernel), and the names below it that mkdir would
 * make. Those names hold no links (they do not exist), so joining them to the real path lexically
 * agrees with mkdir. A missing name that is a link points nowhere: refused.
 */
function startOf(path: string): { dir: string; missing: string[] } {
  const missing: string[] = [];
  let p = path;
  while (statOf(p) == null) {
    if (statOf(p, true) != null) throw new CannotWrite(`${p} is a link to nothing`);
    const up = dirname(p);
    if (up === p) throw new CannotWrite(`${p} does not exist`); // a removed working folder
    missing.unshift(basename(p));
    p = up;
  }
  // .native: the libc realpath, which the kernel resolves; fs.realpathSync normalises lexically first
  const dir = realpathSync.native(p);
  if (!statSync(dir).isDirectory()) throw new CannotWrite(`${dir} is a file, not a folder`);
  return { dir, missing };
}

/** `startOf(path)`, whose folder takes a new folder; else the CannotWrite saying why not. */
function writableStart(path: string): { dir: string; missing: string[] } {
  const start = startOf(path);
  const why = cannotCreateIn(start.dir);
  if (why != null) throw new CannotWrite(why);
  return start;
}

/** `fn`'s result; its CannotWrite becomes the UsageError `sentence(why)`. */
function refusing<T>(fn: () => T, sentence: (why: string) => string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CannotWrite) throw new UsageError(sentence(err.message));
    throw err;
  }
}

/**
 * Checks `flag`'s folder (`--out DIR` of train, distill, demo) before any work: it exists or can be
 * made, and files can be written in it. Returns its absolute path as the kernel resolves it; otherwise
 * a UsageError naming `given` (exit 2).
 */
export function checkOutDir(flag: string, given: string): string {
  const st = statOf(given);
  if (st != null && !st.isDirectory()) {
    throw new UsageError(`${flag} ${given} is a file, not a folder; pass a folder (it is made if missing).`);
  }
  const what = st != null ? 'cannot be written in' : 'cannot be made';
  const { dir, missing } = refusing(
    () => writableStart(given),
    (why) => `${flag} ${given} ${what}: ${why}; pass a folder you can write in.`,
  );
  return join(dir, ...missing);
}

/**
 * Checks `flag`'s file (`--out FILE.png` of sample, `--out FILE` of bench) before any work: it is not a
 * folder, and its folder exists or can be made and takes new files (files are written beside the
 * target, then renamed over it). Returns its absolute path as the kernel resolves its folder; otherwise
 * a UsageError naming `given`.
 */
export function checkOutFile(flag: string, given: string): string {
  if (statOf(given)?.isDirectory()) throw new UsageError(`${flag} ${given} is a folder, not a file; pass a file path.`);
  const { dir, missing } = refusing(
    () => writableStart(dirname(given)),
    (why) => `${flag} ${given} cannot be written: ${why}; pass a path in a folder you can write in.`,
  );
  return join(dir, ...missing, basename(given));
}
