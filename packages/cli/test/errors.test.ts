// Every bad input the CLI knows of, walked through the built binary: each is refused before any work
// (nothing on stdout, no backend line, nothing created) with exit 2 and one sentence on stderr, never a
// stack. The paths under /proc and /sys are Linux's; CI runs on Linux.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrainingFailedError } from '@t2md/distill';
import { afterAll, describe, expect, it } from 'vitest';
import { describeError, EXIT_FAILURE } from '../src/errors.js';
import { BIN } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'notes.md');
writeFileSync(file, 'a file, not a folder\n');
mkdirSync(join(dir, 'shots.png'));
// a file that is no model, and a run folder holding one as its checkpoint
const junk = join(dir, 'junk.safetensors');
writeFileSync(junk, 'not a safetensors file at all');
mkdirSync(join(dir, 'held'));
writeFileSync(join(dir, 'held', 'latest.safetensors'), 'not a checkpoint either');
const linux = process.platform === 'linux';
// `procself/..` is /proc to the kernel (and to mkdir), `.` to a lexical resolve
if (linux) symlinkSync('/proc/self', join(dir, 'procself'));

/**
 * Runs the built CLI with a hard deadline: a hang (Node's recursive mkdir under /proc spun at 100% CPU
 * and ignored SIGTERM) is killed with SIGKILL and fails the test instead of stalling the run.
 */
function t2md(args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    // cpu unless a case names its backend: refusals come before any backend starts anyway
    env: { ...process.env, T2MD_BACKEND: 'cpu', ...env },
    timeout: 30_000,
    killSignal: 'SIGKILL',
    cwd: dir,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Exit 2, nothing on stdout, and exactly one line on stderr: `t2md: ` and one sentence matching `pattern`. */
function expectRefused(r: ReturnType<typeof t2md>, pattern: RegExp): void {
  expect(r.signal, `killed (a hang?): ${r.stderr}`).toBeNull();
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).toHaveLength(1);
  const [line] = lines;
  expect(line).toMatch(/^t2md: \S/);
  expect(line).toMatch(/\.$/);
  expect(line).not.toMatch(/\bat \S+:\d+|^\s+at |Error: /);
  expect(line).toMatch(pattern);
}

const png = (name: string) => join(dir, name);

describe('bad output paths are one sentence and exit 2 before any work', () => {
  it.runIf(linux)('train, distill and demo refuse a folder under /proc at once (a recursive mkdir spun there forever)', () => {
    expectRefused(
      t2md(['train', '--out', '/proc/t2md-run', '--preset', 'tiny']),
      // root hears ENOENT from /proc, other users EACCES
      /^t2md: --out \/proc\/t2md-run cannot be made: (\/proc takes no new files \(ENOENT\)|you may not write in \/proc \(EACCES\)); pass a folder you can write in\.$/,
    );
    expectRefused(t2md(['distill', '--teacher', file, '--out', '/proc/t2md-run']), /--out \/proc\/t2md-run cannot be made/);
    expectRefused(t2md(['demo', '--out', '/proc/t2md-demo']), /--out \/proc\/t2md-demo cannot be made/);
    // through a link: checked lexically (./t2md-run) this passed, and the trainer's mkdir spun in /proc
    expectRefused(
      t2md(['train', '--out', 'procself/../t2md-run', '--preset', 'tiny']),
      /^t2md: --out procself\/\.\.\/t2md-run cannot be made: .*\/proc\b/,
    );
    expectRefused(
      t2md(['sample', 'a red circle', '--out', 'procself/../x.png']),
      /^t2md: --out procself\/\.\.\/x\.png cannot be written: .*\/proc\b/,
    );
  });

  it.runIf(linux)('train refuses a folder below a file, and a file, naming the path as given', () => {
    expectRefused(
      t2md(['train', '--out', '/dev/null/x']),
      /^t2md: --out \/dev\/null\/x cannot be made: \/dev\/null is a file, not a folder;/,
    );
    expectRefused(
      t2md(['train', '--out', 'notes.md']),
      /^t2md: --out notes\.md is a file, not a folder; pass a folder \(it is made if missing\)\.$/,
    );
  });

  it.runIf(linux)('sample refuses a PNG under /proc, in a folder it may not write, below a file, or a folder', () => {
    expectRefused(
      t2md(['sample', 'a red circle', '--out', '/proc/x.png']),
      /^t2md: --out \/proc\/x\.png cannot be written: .*\/proc.*; pass a path in a folder you can write in\.$/,
    );
    // /sys refuses new entries to root too (EPERM; EACCES for other users; EROFS where it is mounted read-only)
    expectRefused(
      t2md(['sample', 'a red circle', '--out', '/sys/x.png']),
      /^t2md: --out \/sys\/x\.png cannot be written: (you may not write in \/sys \(E(PERM|ACCES)\)|\/sys is on a read-only file system);/,
    );
    expectRefused(t2md(['sample', 'a red circle', '--out', join(file, 'x.png')]), /notes\.md is a file, not a folder/);
    expectRefused(
      t2md(['sample', 'a red circle', '--out', 'shots.png']),
      /^t2md: --out shots\.png is a folder, not a file; pass a file path\.$/,
    );
  });

  it.runIf(linux)('bench refuses a results file it cannot write, before measuring', () => {
    expectRefused(t2md(['bench', 'scan', '--out', '/proc/results.json']), /^t2md: --out \/proc\/results\.json cannot be written:/);
    expectRefused(t2md(['bench', 'scan', '--out', dir]), /is a folder, not a file; pass a file path\.$/);
  });
});

describe("a run's options and files are refused before the backend starts", () => {
  // train and distill plan the run (options, checkpoint, --init, --teacher headers) before the backend:
  // the refusal is the only line, with no `t2md train: backend …` line above it
  it.each([
    [
      ['train', '--out', 'empty', '--resume'],
      /^t2md: empty\/latest\.safetensors does not exist, so there is nothing to resume; .*\(drop --resume\)\.$/,
    ],
    [['train', '--init', 'junk.safetensors', '--out', 'r', '--resume'], /\(drop --init or --resume\)\.$/],
    [
      ['train', '--init', 'junk.safetensors', '--out', 'held'],
      /^t2md: held already holds a checkpoint, and init starts a new run; .*\(pass another --out, or drop --init and pass --resume\)\.$/,
    ],
    [
      ['train', '--init', 'junk.safetensors', '--out', 'r'],
      /^t2md: junk\.safetensors is not a model or checkpoint file \(Invalid safetensors file: .*\); pass a \.safetensors file/,
    ],
    [['train', '--out', 'held', '--resume'], /^t2md: held\/latest\.safetensors is not a model or checkpoint file \(/],
    [['distill', '--teacher', 'junk.safetensors', '--out', 'r'], /^t2md: junk\.safetensors is not a model or checkpoint file \(/],
    [['distill', '--teacher', '.', '--out', 'r'], /^t2md: teacher \. is a folder without model\.safetensors;/],
  ] as [string[], RegExp][])('%j', (args, pattern) => {
    expectRefused(t2md(args), pattern);
  });
});

describe('every other bad input is one sentence and exit 2', () => {
  it('a WebGPU asked for and missing: no Dawn lines, and no offer of webgpu again', () => {
    const r = t2md(['sample', 'a red circle', '--backend', 'webgpu', '--out', png('w.png')], {
      T2MD_BACKEND: undefined,
      VK_ICD_FILENAMES: '/nonexistent/icd.json',
    });
    expectRefused(r, /^t2md: Backend 'webgpu' is not available: .+; choose wasm or cpu instead \(pass --backend wasm or cpu\)\.$/);
  });

  it.each([
    [['frobnicate'], /^t2md: unknown command 'frobnicate'\. See t2md --help\.$/],
    [['evl'], /^t2md: unknown command 'evl'; did you mean eval\? See t2md --help\.$/],
    [['train'], /required option '--out <dir>' not specified\. See t2md --help\.$/],
    [['train', '--out', 'r', '--bogus'], /unknown option '--bogus'\. See t2md --help\.$/],
    [['sample'], /missing required argument 'prompt'\. See t2md --help\.$/],
    [['info', 'extra'], /too many arguments for 'info'/],
    [['train', '--out', 'r', '--steps', '-3'], /--steps must be an integer in \[1, /],
    [['train', '--out', 'r', '--text-lr-scale', '0'], /--text-lr-scale must be a number > 0, got '0'\. See t2md --help\.$/],
    [['train', '--out', 'r', '--text-lr-scale', 'NaN'], /--text-lr-scale must be a number > 0, got 'NaN'\. See t2md --help\.$/],
    // the caption encoder trains in t2md train only (distillation freezes it)
    [
      ['distill', '--teacher', 'junk.safetensors', '--out', 'r', '--text-lr-scale', '2'],
      /unknown option '--text-lr-scale'\. See t2md --help\.$/,
    ],
    [['info', '--backend', 'cuda'], /--backend must be one of auto, webgpu, wasm, cpu, got 'cuda'/],
    [['info'], /T2MD_BACKEND must be one of auto, webgpu, wasm, cpu, got 'cuda'/, { T2MD_BACKEND: 'cuda' }],
    [['sample', 'a red dragon'], /dragon/],
    [['sample', 'a red circle', '--out', 'x.jpg'], /--out must name a \.png file/],
    [
      ['sample', 'a red circle', '--model', 'missing.safetensors', '--out', 'm.png'],
      /--model missing\.safetensors is neither teacher, student nor an existing file/,
    ],
    [['eval', '--model', 'missing.safetensors'], /--model missing\.safetensors is neither/],
    [['distill', '--teacher', 'missing.safetensors', '--out', 'r'], /^t2md: --teacher missing\.safetensors does not exist;/],
    [['train', '--init', 'missing.safetensors', '--out', 'r'], /^t2md: --init missing\.safetensors does not exist;/],
    [['bench', 'nope'], /unknown benchmark 'nope'; choose one of scan, /],
    [['bench', 'train', '--batches', '4,x'], /--batches must be batch sizes separated by commas/],
  ] as [string[], RegExp, Record<string, string>?][])('%j', (args, pattern, env) => {
    expectRefused(t2md(args, env), pattern);
  });
});

// last: vitest runs a file's tests in order, so this sees every refusal above
describe('the refusals', () => {
  it('creates nothing on the way', () => {
    expect(readdirSync(dir).sort()).toEqual(['held', 'junk.safetensors', 'notes.md', ...(linux ? ['procself'] : []), 'shots.png']);
    expect(readdirSync(join(dir, 'held'))).toEqual(['latest.safetensors']);
    expect(readdirSync(join(dir, 'shots.png'))).toEqual([]);
    expect(existsSync('/proc/t2md-run')).toBe(false);
  });
});

describe('a training run stopped at a broken step', () => {
  it('is exit 1 and one sentence with the flags that mend it, no stack', () => {
    const oom = new TrainingFailedError(
      `stage 'distill' stopped at step 10: the WebGPU device reported 3 error(s), the first: "out of memory"; the weights since the last checkpoint are not saved: free device memory (fewer runs on the GPU, or recompute) and resume the run.`,
    );
    expect(describeError(oom)).toEqual({
      code: EXIT_FAILURE,
      line: `t2md: ${oom.message.replace(/\.$/, '')} (pass --resume, with --recompute for less memory).`,
    });
    const nan = new TrainingFailedError(
      `stage 'teacher' stopped at step 20: the loss is NaN; the weights since the last checkpoint are not saved: check the data for non-finite values, or start again from the last checkpoint with init and a lower lr.`,
    );
    expect(describeError(nan, true).line).toMatch(/\(pass --init OUT\/latest\.safetensors, a lower --lr and another --out\)\.$/);
  });
});
