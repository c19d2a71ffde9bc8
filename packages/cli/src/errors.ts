import { isInputError, WASM_MAX_MEMORY, wasmMemoryBytes } from '@t2md/core';
import { TrainingFailedError } from '@t2md/distill';
import { BACKENDS } from './options.js';

/** Exit codes of the contract: 0 success, 1 failure while running, 2 bad usage or bad input. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A usage error raised by the CLI itself (bad flag value, missing argument). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Some points of a benchmark failed (out of memory, a WebGPU error): the run finished and wrote its
 * rows, so exit 1 with the one sentence that says which, and no stack.
 */
export class PointsFailedError extends Error {
  override readonly name = 'PointsFailedError';
}

/**
 * The libraries' messages name their own options (`resume`, the `out` folder, a stage); these add
 * what to type instead. Each pattern is a phrase of one library message (tests pin them together).
 */
const FLAG_ADVICE: [RegExp, (m: RegExpExecArray) => string][] = [
  // never offers the backend that just failed
  [/^Backend '(\w+)' is not available/, (m) => `pass --backend ${BACKENDS.filter((b) => b !== 'auto' && b !== m[1]).join(' or ')}`],
  [/and init starts a new run/, () => 'pass another --out, or drop --init and pass --resume'],
  [/init starts a new run from a model file, and resume/, () => 'drop --init or --resume'],
  [/start a new run without init/, () => 'drop --no-teacher-init, or drop --init'],
  [/already holds a checkpoint/, () => 'pass --resume to continue it, or another --out'],
  [/nothing to resume; start without resume/, () => 'drop --resume'],
  [/resume it at stage (\w+)/, (m) => `pass --stage ${m[1]} or --stage all`],
  [/not a teacher one; resume it as a distillation run/, () => 'continue it with t2md distill --resume'],
  [/keep teacherInit as it was/, () => 'drop --no-teacher-init, or pass another --out'],
  [/distil into another out folder|start a new run in another out folder/, () => 'pass another --out'],
  [
    /free device memory \(fewer runs on the GPU, or recompute\) and resume the run/,
    () => 'pass --resume, with --recompute for less memory',
  ],
  [
    /start again from the last checkpoint with init and a lower lr/,
    () => 'pass --init OUT/latest.safetensors, a lower --lr and another --out',
  ],
];

/** A library InputError's message with the CLI's flags for the fix appended, where it has some. */
export function withFlagAdvice(message: string): string {
  for (const [re, advice] of FLAG_ADVICE) {
    const m = re.exec(message);
    if (m) return `${message.replace(/\.$/, '')} (${advice(m)}).`;
  }
  return message;
}

/**
 * Maps an error to its exit code and the one line printed on stderr (no stack for user mistakes; the
 * stack of an unexpected failure with `debug`, the global `--debug` flag).
 */
export function describeError(err: unknown, debug = false): { code: number; line: string } {
  if (err instanceof UsageError) return { code: EXIT_USAGE, line: `t2md: ${err.message}` };
  if (err instanceof PointsFailedError) return { code: EXIT_FAILURE, line: `t2md: ${err.message}` };
  // a run stopped at a broken step: a failure while running, said in one sentence, no stack
  if (err instanceof TrainingFailedError) return { code: EXIT_FAILURE, line: `t2md: ${withFlagAdvice(err.message)}` };
  if (isInputError(err)) return { code: EXIT_USAGE, line: `t2md: ${withFlagAdvice(err.message)}` };
  const e = err as { code?: string; message?: string; path?: string };
  if (e?.code === 'ENOENT') return { code: EXIT_USAGE, line: `t2md: no such file: ${e.path ?? e.message}; check the path.` };
  if (e?.code === 'EACCES') return { code: EXIT_USAGE, line: `t2md: permission denied: ${e.path ?? e.message}.` };
  if (typeof e?.message === 'string' && e.message.startsWith('Invalid safetensors file')) {
    return { code: EXIT_USAGE, line: `t2md: ${e.message} Pass a file written by t2md or another safetensors writer.` };
  }
  const message = String((err as Error)?.message ?? err).replace(/\.$/, '');
  const full = wasmFull(err);
  if (full != null) {
    return {
      code: EXIT_FAILURE,
      line: `t2md: the wasm backend ran out of memory: it held ${full} GiB of WebAssembly's ${WASM_MAX_MEMORY / 2 ** 30} GiB when it stopped (${message}); use a smaller batch or image size, or --backend webgpu.`,
    };
  }
  const detail = debug ? `.\n${(err as Error)?.stack ?? String(err)}` : ' (run with --debug for the stack).';
  return { code: EXIT_FAILURE, line: `t2md: failed: ${message}${detail}` };
}

/**
 * A trap of the wasm backend that ran out of its memory, as the GiB it held (one decimal), else null.
 * Such a run gets no out-of-memory error: tfjs and XNNPACK use the failed allocation and trap later
 * ("table index is out of bounds", "memory access out of bounds"), with the memory near its 4 GiB.
 */
function wasmFull(err: unknown): string | null {
  if (!(err instanceof WebAssembly.RuntimeError)) return null;
  const held = wasmMemoryBytes();
  return held != null && held >= WASM_FULL * WASM_MAX_MEMORY ? (held / 2 ** 30).toFixed(1) : null;
}

/** The share of WebAssembly's memory above which a trap is taken for running out of it. */
const WASM_FULL = 0.9;
