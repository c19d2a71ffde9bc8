import { isInputError } from '@t2md/core';

/** Exit codes of the contract: 0 success, 1 failure while running, 2 bad usage or bad input. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A usage error raised by the CLI itself (bad flag value, missing argument). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Maps an error to its exit code and the one line printed on stderr (no stack for user mistakes). */
export function describeError(err: unknown): { code: number; line: string } {
  if (err instanceof UsageError || isInputError(err)) return { code: EXIT_USAGE, line: `t2md: ${(err as Error).message}` };
  const e = err as { code?: string; message?: string; path?: string };
  if (e?.code === 'ENOENT') return { code: EXIT_USAGE, line: `t2md: no such file: ${e.path ?? e.message}; check the path.` };
  if (e?.code === 'EACCES') return { code: EXIT_USAGE, line: `t2md: permission denied: ${e.path ?? e.message}.` };
  if (typeof e?.message === 'string' && e.message.startsWith('Invalid safetensors file')) {
    return { code: EXIT_USAGE, line: `t2md: ${e.message} Pass a file written by t2md or another safetensors writer.` };
  }
  const detail = process.env.T2MD_DEBUG ? `\n${(err as Error)?.stack ?? String(err)}` : ' (set T2MD_DEBUG=1 for the stack)';
  return { code: EXIT_FAILURE, line: `t2md: failed: ${(err as Error)?.message ?? String(err)}${detail}` };
}
