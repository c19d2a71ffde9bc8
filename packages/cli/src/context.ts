/**
 * What the entry point knows that the CLI cannot see for itself, set once per process by `main`:
 * bench/gpu.ts (the GPU machine's bundle) passes the source it was packed from, the Dawn flags it
 * created `navigator.gpu` with and the `webgpu` package's version. The `t2md` binary passes nothing.
 */
import type { RunContext } from './bench/results.js';

let current: RunContext = {};

/** Sets the context for this process (main does, before parsing the command line). */
export function setRunContext(ctx: RunContext): void {
  current = { ...ctx };
}

export function runContext(): RunContext {
  return current;
}
