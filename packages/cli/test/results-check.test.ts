import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { failRow } from '../src/bench/measure.js';
import { timingsOf } from '../src/bench/results.js';
import { checkResults, pruneResults } from '../src/bench/results-check.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-results-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const git = (args: string[], cwd: string) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
const id = ['-c', 'user.name=t', '-c', 'user.email=t@t'];

/** A scratch repository with two commits; returns its path and both shas. */
function scratchRepo(): { repo: string; first: string; second: string } {
  const repo = join(dir, `repo-${Math.random().toString(36).slice(2)}`);
  mkdirSync(join(repo, 'bench', 'results'), { recursive: true });
  git(['init', '-q'], repo);
  writeFileSync(join(repo, 'a.txt'), '1');
  git([...id, 'add', 'a.txt'], repo);
  git([...id, 'commit', '-qm', 'one'], repo);
  const first = git(['rev-parse', 'HEAD'], repo);
  writeFileSync(join(repo, 'a.txt'), '2');
  git([...id, 'commit', '-qam', 'two'], repo);
  return { repo, first, second: git(['rev-parse', 'HEAD'], repo) };
}

const row = (commit: string | undefined, date: string, L: number, ms: number) => ({
  op: 'ssdScan',
  impl: 'kernel',
  pass: 'forward',
  L,
  heads: 4,
  headdim: 16,
  dstate: 16,
  chunkSize: 64,
  ms,
  ...(commit ? { run: { commit, date, card: 'h100' } } : {}),
});

describe('bench/results.mjs check and prune', () => {
  it('check names every row without a commit of this history, and any note of a correction by hand', () => {
    const { repo, first, second } = scratchRepo();
    const res = join(repo, 'bench', 'results');
    writeFileSync(join(res, 'good.json'), JSON.stringify({ scan: [row(first, '2026-01-01', 64, 1), row(second, '2026-01-02', 128, 2)] }));
    expect(checkResults(res, repo)).toEqual([]);
    writeFileSync(
      join(res, 'bad.json'),
      JSON.stringify({
        notes: ['runs.*.commit corrected by hand'],
        scan: [row(undefined, '', 64, 1), row('0123456789abcdef0123456789abcdef01234567', '2026-01-03', 64, 1)],
        baselines: [{ op: 'attention', impl: 'torch-sdpa' }],
      }),
    );
    const problems = checkResults(res, repo);
    expect(problems).toHaveLength(4);
    expect(problems.join('\n')).toMatch(/bad\.json: a note says something was corrected by hand/);
    expect(problems.join('\n')).toMatch(/bad\.json: scan\[0\] names no commit/);
    expect(problems.join('\n')).toMatch(
      /bad\.json: scan\[1\] names commit 0123456789abcdef0123456789abcdef01234567, which is not in the history of HEAD/,
    );
    expect(problems.join('\n')).toMatch(/bad\.json: baselines\[0\] names no commit/);
  });

  it('check fails on a row that holds an error beside a timing (bench/results.mjs exits 1 and names it)', () => {
    const { repo, first } = scratchRepo();
    const res = join(repo, 'bench', 'results');
    const train = (extra: Record<string, unknown>) => ({
      step: 'distill',
      batch: 1024,
      impl: 't2md',
      preset: 'shapes',
      msPerStep: null,
      samplesPerSec: null,
      blocksMs: [],
      run: { commit: first, date: '2026-01-01', card: 'h100' },
      ...extra,
    });
    writeFileSync(
      join(res, 'oom.json'),
      JSON.stringify({
        train: [
          train({ error: 'WebGPU reported 1 error(s): Out of memory' }), // a failed point, its timings dropped: fine
          train({
            msPerStep: 100.5,
            samplesPerSec: 10187,
            blocksMs: [100, 101, 100.5],
            error: 'WebGPU reported 1 error(s): Out of memory',
          }),
        ],
        scan: [{ ...row(first, '2026-01-01', 64, 2), runs: [2, 2, 2], error: 'buffer too large' }],
      }),
    );
    const problems = checkResults(res, repo);
    expect(problems).toEqual([
      `${join(res, 'oom.json')}: scan[0] has an error and timings (ms, runs); a failed point holds no timings`,
      `${join(res, 'oom.json')}: train[1] has an error and timings (msPerStep, samplesPerSec, blocksMs); a failed point holds no timings`,
    ]);
    const script = resolve(__dirname, '..', '..', '..', 'bench', 'results.mjs');
    const r = spawnSync(process.execPath, [script, 'check', res], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/train\[1\] has an error and timings \(msPerStep, samplesPerSec, blocksMs\)/);
    expect(r.stdout).toMatch(/2 problem\(s\)/);
  });

  it('check holds an ablation file (bench/ablation.sh) to commits of this history and scores at every seed or an error', () => {
    const { repo, first } = scratchRepo();
    const res = join(repo, 'bench', 'results');
    const scores = (seed: number) => ({ seed, overall: 0.5, categories: { colors: 0.5 } });
    const rung = (name: string, commit: string, extra: object) => ({
      rung: name,
      run: { commit, date: '2026-01-01', card: 'h100' },
      ...extra,
    });
    const ablation = (rungs: object[], seeds = [0, 1]) => ({ kind: 'ablation', settings: { seeds }, rungs, notes: [] });
    const good = join(res, '2026-01-01-h100-ablation.json');
    writeFileSync(
      good,
      JSON.stringify(ablation([rung('teacher', first, { evals: [scores(0), scores(1)] }), rung('uni', first, { error: 'x' })])),
    );
    expect(checkResults(res, repo)).toEqual([]);
    const unknown = '0123456789abcdef0123456789abcdef01234567';
    writeFileSync(
      good,
      JSON.stringify(
        ablation(
          [
            rung('teacher', unknown, { evals: [scores(0)] }),
            rung('uni', first, { error: 'stopped', evals: [scores(0)] }),
            { rung: 'forcing', evals: [scores(0)] },
          ],
          [0],
        ),
      ),
    );
    writeFileSync(join(res, '2026-01-02-h100-ablation.json'), JSON.stringify({ scan: [] }));
    expect(checkResults(res, repo)).toEqual([
      `${good}: settings.seeds lists fewer than two seeds, so no rung has a spread`,
      `${good}: rungs[0] (teacher) names commit ${unknown}, which is not in the history of HEAD`,
      `${good}: rungs[1] (uni) has an error and scores; a failed rung holds no scores`,
      `${good}: rungs[2] (forcing) names no commit (run.commit)`,
      `${join(res, '2026-01-02-h100-ablation.json')}: named *-ablation.json but its kind is not "ablation"; only bench/ablation.sh writes these`,
    ]);
    // prune leaves ablation files alone (they have no bench sections)
    expect(pruneResults(res, true)).toEqual([]);
  });

  it("a bench marks a failed point's row with its error and drops the timings it took before failing", () => {
    const point = {
      step: 'distill',
      batch: 1024,
      msPerStep: 100.5,
      samplesPerSec: 10187,
      kernelsPerStep: 930,
      blocksMs: [100, 101, 100.5],
      hostMsPerStep: 20,
      relErr: 1e-6,
    };
    expect(failRow(point, new Error('WebGPU reported 1 error(s):\n  Out of memory'))).toEqual({
      step: 'distill',
      batch: 1024,
      msPerStep: null,
      samplesPerSec: null,
      kernelsPerStep: 930, // a count, not a timing
      blocksMs: [],
      hostMsPerStep: null,
      relErr: 1e-6,
      error: 'WebGPU reported 1 error(s): Out of memory',
    });
    expect(timingsOf(point)).toEqual([]);
  });

  it('prune drops rows a later run superseded on the same card, and files left empty', () => {
    const { repo, first, second } = scratchRepo();
    const res = join(repo, 'bench', 'results');
    const old = join(res, '2026-01-01-h100.json');
    const mid = join(res, '2026-01-02-h100.json');
    const fresh = join(res, '2026-01-03-h100.json');
    writeFileSync(old, JSON.stringify({ scan: [row(first, '2026-01-01', 64, 9)] }));
    writeFileSync(mid, JSON.stringify({ scan: [row(first, '2026-01-02', 64, 5), row(first, '2026-01-02', 256, 7)] }));
    writeFileSync(fresh, JSON.stringify({ scan: [row(second, '2026-01-03', 64, 3)] }));
    expect(pruneResults(res, true)).toHaveLength(2); // a dry run reports and leaves the files alone
    expect(existsSync(old)).toBe(true);
    const report = pruneResults(res);
    expect(report.join('\n')).toMatch(/2026-01-01-h100\.json: every row superseded, file removed/);
    expect(report.join('\n')).toMatch(/2026-01-02-h100\.json: 1 superseded row\(s\) dropped, 1 kept/);
    expect(existsSync(old)).toBe(false);
    expect(JSON.parse(readFileSync(mid, 'utf8')).scan.map((r: { L: number }) => r.L)).toEqual([256]);
    expect(JSON.parse(readFileSync(fresh, 'utf8')).scan).toHaveLength(1);
    expect(pruneResults(res)).toEqual([]);
  });

  it("this repository's committed results name commits of its history", (ctx) => {
    const root = resolve(__dirname, '..', '..', '..');
    if (git(['rev-parse', '--is-shallow-repository'], root) === 'true') {
      process.stderr.write('skipped: a shallow clone lacks the commits results rows name; fetch with --unshallow to check them\n');
      return ctx.skip('a shallow clone lacks the commits results rows name');
    }
    expect(checkResults(join(root, 'bench', 'results'), root)).toEqual([]);
  });
});
