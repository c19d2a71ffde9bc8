import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

/** Path of the built `t2md` entry (tests run after `npm run build`). */
export const BIN = resolve(__dirname, '..', 'dist', 'bin.js');

/** Runs the built CLI in a child process and returns its exit code and output. */
export function t2md(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 300_000) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: timeoutMs,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
