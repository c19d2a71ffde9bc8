import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { checkOutDir, checkOutFile } from './out-path.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-out-path-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'file.txt');
writeFileSync(file, 'x');
mkdirSync(join(dir, 'folder'));
symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'));
mkdirSync(join(dir, 'deep', 'inner'), { recursive: true });
symlinkSync(join(dir, 'deep', 'inner'), join(dir, 'inner-link'));
const linux = process.platform === 'linux';
if (linux) symlinkSync('/proc/self', join(dir, 'proc-link'));

/** The UsageError `fn` throws (the test fails when it throws nothing or something else). */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('checkOutDir', () => {
  it('accepts a folder that exists or can be made, and creates nothing', () => {
    const before = readdirSync(dir).sort();
    expect(checkOutDir('--out', join(dir, 'folder'))).toBe(join(dir, 'folder'));
    expect(checkOutDir('--out', join(dir, 'a', 'b', 'c'))).toBe(join(dir, 'a', 'b', 'c'));
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(readdirSync(join(dir, 'folder'))).toEqual([]);
  });

  it('refuses a file, a path below a file and a link to nothing, naming the path as given', () => {
    expect(refusal(() => checkOutDir('--out', file))).toBe(`--out ${file} is a file, not a folder; pass a folder (it is made if missing).`);
    expect(refusal(() => checkOutDir('--out', join(file, 'x', 'y')))).toBe(
      `--out ${join(file, 'x', 'y')} cannot be made: ${file} is a file, not a folder; pass a folder you can write in.`,
    );
    expect(refusal(() => checkOutDir('--out', join(dir, 'dangling', 'x')))).toMatch(/dangling is a link to nothing; pass a folder/);
  });

  it('resolves `..` after a link as the kernel (and a recursive mkdir) does, not lexically', () => {
    // inner-link/.. is deep, where inner-link points, not dir
    expect(checkOutDir('--out', `${dir}/inner-link/../made`)).toBe(join(dir, 'deep', 'made'));
    expect(checkOutFile('--out', `${dir}/inner-link/../x.png`)).toBe(join(dir, 'deep', 'x.png'));
    expect(checkOutFile('--out', `${dir}/inner-link/../new/x.png`)).toBe(join(dir, 'deep', 'new', 'x.png'));
  });

  it.runIf(linux)('refuses a path that reaches /proc through a link and `..` (checked lexically, it passed and mkdir spun)', () => {
    const t0 = performance.now();
    expect(refusal(() => checkOutDir('--out', `${dir}/proc-link/../t2md-run`))).toMatch(
      /^--out .*\/proc-link\/\.\.\/t2md-run cannot be made: (\/proc takes no new files \(ENOENT\)|you may not write in \/proc \(EACCES\)); /,
    );
    expect(refusal(() => checkOutFile('--out', `${dir}/proc-link/../x.png`))).toMatch(/ cannot be written: .*\/proc\b/);
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it.runIf(linux)('refuses a path under /proc at once (a recursive mkdir would spin there)', () => {
    const t0 = performance.now();
    // root hears ENOENT from /proc, other users EACCES
    expect(refusal(() => checkOutDir('--out', '/proc/t2md-run/x'))).toMatch(
      /^--out \/proc\/t2md-run\/x cannot be made: (\/proc takes no new files \(ENOENT\)|you may not write in \/proc \(EACCES\)); pass a folder you can write in\.$/,
    );
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
  // root may write anywhere but in /sys (EPERM; EROFS where it is mounted read-only); another user
  // meets a folder without write permission
  it.runIf(linux)('refuses a folder the user may not write in', () => {
    if (process.getuid?.() === 0) {
      expect(refusal(() => checkOutDir('--out', '/sys/t2md-run'))).toMatch(
        /^--out \/sys\/t2md-run cannot be made: (you may not write in \/sys \(EPERM\)|\/sys is on a read-only file system); pass a folder you can write in\.$/,
      );
      return;
    }
    const locked = join(dir, 'locked');
    mkdirSync(locked, { mode: 0o555 });
    expect(refusal(() => checkOutDir('--out', join(locked, 'run')))).toBe(
      `--out ${join(locked, 'run')} cannot be made: you may not write in ${locked} (EACCES); pass a folder you can write in.`,
    );
  });
});

describe('checkOutFile', () => {
  it('accepts a new or existing file in a folder that exists or can be made, and creates nothing', () => {
    const before = readdirSync(dir).sort();
    expect(checkOutFile('--out', file)).toBe(file);
    expect(checkOutFile('--out', join(dir, 'new', 'x.png'))).toBe(join(dir, 'new', 'x.png'));
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it('refuses a folder, and a file whose folder cannot be made', () => {
    expect(refusal(() => checkOutFile('--out', join(dir, 'folder')))).toBe(
      `--out ${join(dir, 'folder')} is a folder, not a file; pass a file path.`,
    );
    expect(refusal(() => checkOutFile('--out', join(file, 'x.png')))).toBe(
      `--out ${join(file, 'x.png')} cannot be written: ${file} is a file, not a folder; pass a path in a folder you can write in.`,
    );
  });
});
