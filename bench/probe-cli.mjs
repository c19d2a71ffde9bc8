/**
 * The command line the model probes share (`caption-probe.mjs`, `guidance-probe.mjs`):
 * `MODEL... [--json] [--backend wasm|cpu|webgpu]` plus a probe's own valued options, through Node's
 * `util.parseArgs`. `teacher` and `student` name the shipped files in packages/shapes/models/. A bad
 * command line is one sentence and the usage on stderr, exit 2.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BACKENDS = ['wasm', 'cpu', 'webgpu'];

/** `teacher` / `student`: the shipped model file; anything else: a path as given. */
export const shippedModel = (m) =>
  m === 'teacher' || m === 'student' ? join(root, 'packages', 'shapes', 'models', `${m}.safetensors`) : m;

/**
 * Parses the probe's command line. `options` names its own valued options (`['teacher']` for
 * `--teacher FILE`), `flags` its own switches (`['list']` for `--list`); `models` is what runs when no MODEL is named (none: at least one is required).
 * Returns the model files (resolved, each checked to exist), `json`, `backend` (default wasm), the
 * probe's own option values, and `fail(msg)`, which prints msg with the usage and exits with code 2.
 */
export function probeArgs(name, usage, { options = [], flags = [], models = [] } = {}) {
  const fail = (msg) => {
    process.stderr.write(`${name}: ${msg}\nusage: ${usage}\n`);
    process.exit(2);
  };
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        backend: { type: 'string' },
        ...Object.fromEntries(options.map((o) => [o, { type: 'string' }])),
        ...Object.fromEntries(flags.map((f) => [f, { type: 'boolean' }])),
      },
    });
  } catch (err) {
    fail(err.message.split('. ')[0]); // parseArgs' first sentence names the option
  }
  const { json = false, backend = 'wasm', ...values } = parsed.values;
  if (!BACKENDS.includes(backend)) fail(`--backend must be wasm, cpu or webgpu, got ${JSON.stringify(backend)}`);
  const named = parsed.positionals.length > 0 ? parsed.positionals : models;
  if (named.length === 0) fail('name at least one model: teacher, student or a model file');
  const files = named.map(shippedModel);
  const exists = (f) => {
    if (!existsSync(f)) fail(`${f} does not exist; pass teacher, student or a file that t2md train or distill wrote`);
    return f;
  };
  files.forEach(exists);
  return { files, json, backend, values, exists, fail };
}
