/**
 * Reads an `evals.jsonl` that bench/gpu-evals.sh wrote: one `t2md eval --json` line per eval, with the
 * settings and the model file's sha256 that made it. Shared by bench/step-table.mjs (--rows) and
 * bench/best-arm.mjs.
 */
import { existsSync, readFileSync } from 'node:fs';

/** What every line carries (gpu-evals.sh writes them all). */
const KEYS = ['role', 'label', 'seed', 'steps', 'overall', 'sha256', 'backend', 'card', 'prompts', 'sampler', 'cfg', 'batch'];

/**
 * The rows of `path`, each checked to hold KEYS. A missing file, a line that is not JSON or a row
 * without one of KEYS calls `fail(msg)` with one sentence (which must not return).
 */
export function readEvalRows(path, fail) {
  if (!existsSync(path)) fail(`${path} does not exist; pass the evals.jsonl that bench/gpu-evals.sh wrote`);
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  return lines.map((l, i) => {
    let r;
    try {
      r = JSON.parse(l);
    } catch {
      fail(`line ${i + 1} of ${path} is not JSON`);
    }
    for (const k of KEYS) if (r[k] == null) fail(`line ${i + 1} of ${path} has no "${k}"; write the file with bench/gpu-evals.sh`);
    return r;
  });
}
