/**
 * Crash-safe file replacement: the bytes go to a temporary file in the same directory, are flushed to
 * disk (fsync), and the temporary file is renamed over the target; then the directory is fsynced so
 * the rename itself survives a power cut. A process killed at any point leaves either the old file or
 * the new one at `path`, never a half-written one (POSIX rename is atomic within a filesystem).
 *
 * Node-only (node:fs); no other imports, so a child process can load it on its own (see the test).
 */
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Test hooks: called after the temporary file is written (and fsynced), before the rename. */
export interface AtomicWriteHooks {
  beforeRename?: (tmpPath: string) => void;
}

/** The prefix of temporary files for `target` (`.name.tmp-`); leftovers of killed writes start with it. */
export function tempPrefix(target: string): string {
  return `.${basename(target)}.tmp-`;
}

/** Writes `bytes` to `path` atomically (temporary file + fsync + rename + directory fsync). */
export function atomicWriteFile(path: string, bytes: Uint8Array, hooks: AtomicWriteHooks = {}): void {
  const dir = dirname(path);
  const tmp = join(dir, `${tempPrefix(path)}${process.pid}-${Date.now().toString(36)}`);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, Math.min(bytes.length - off, 1 << 24));
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    safeUnlink(tmp);
    throw err;
  }
  closeSync(fd);
  try {
    hooks.beforeRename?.(tmp);
    renameSync(tmp, path);
  } catch (err) {
    safeUnlink(tmp);
    throw err;
  }
  fsyncDir(dir);
}

/** Removes temporary files left by writes of `path` that were killed before their rename. */
export function removeStaleTemps(path: string): string[] {
  const dir = dirname(path);
  const prefix = tempPrefix(path);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed = names.filter((n) => n.startsWith(prefix));
  for (const n of removed) safeUnlink(join(dir, n));
  return removed;
}

/** fsync of a directory makes a rename in it durable; some platforms (Windows) cannot open one: skip there. */
function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // EISDIR / EINVAL / EPERM on filesystems that do not support it: the rename is still atomic.
  } finally {
    closeSync(fd);
  }
}

function safeUnlink(p: string): void {
  try {
    unlinkSync(p);
  } catch {
    // already gone
  }
}
