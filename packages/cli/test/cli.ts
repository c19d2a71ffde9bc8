import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { expect } from 'vitest';

/** Path of the built `t2md` entry (tests run after `npm run build`). */
export const BIN = resolve(__dirname, '..', 'dist', 'bin.js');

/** Runs the built CLI in a child process (in `cwd`, default this one) and returns its exit code and output. */
export function t2md(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 300_000, cwd?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: timeoutMs,
    ...(cwd ? { cwd } : {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * A bad-input exit: code 2 and exactly one line on stderr, `t2md:` and a sentence matching `pattern`,
 * no JavaScript stack. Every line counts, so a refusal that comes after the backend started (its
 * `t2md train: backend …` line) fails here: bad input is refused before any work.
 */
export function expectOneLine(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^t2md: /);
  expect(lines[0]).toMatch(/\.$/);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/at .*\.(m?js|ts):\d+/);
}
