/**
 * The ablation flags of `t2md train` / `t2md distill` (built CLI, wasm) and bench/ablation.sh end to end
 * on two rungs (the teacher and one trained for two steps; the whole ladder takes about 80 s on 2 shared
 * CPU cores, see bench/ablation.md): two seeds, the results file, keeping, redoing and resuming rungs.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkResults } from '../src/bench/results-check.js';
import { commandLine, distillRunOptions } from '../src/commands/train.js';
import { BIN, expectOneLine, t2md } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 't2md-ablation-'));
const env = { T2MD_BACKEND: 'wasm' };
const teacher = join(dir, 'teacher');
const SCRIPT = resolve(__dirname, '..', '..', '..', 'bench', 'ablation.sh');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The JSON metadata entry `key` of a safetensors file. */
function metadata(file: string, key: string): Record<string, unknown> {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  return JSON.parse(JSON.parse(b.subarray(8, 8 + n).toString()).__metadata__[key]);
}

describe('ablation flags and bench/ablation.sh (wasm)', () => {
  beforeAll(() => {
    const recipe = ['--warmup', '3', '--lr-decay', 'cosine', '--ema-decay', '0.5', '--caption-dropout', '0.2', '--min-snr', '5'];
    recipe.push('--category-mix', 'position=3,counting=2'); // kept in CATEGORIES' order: counting first
    recipe.push('--recompute'); // activation recomputation: a stage setting, stored like the recipe's
    const r = t2md(['train', '--out', teacher, '--preset', 'tiny', '--steps', '2', '--batch-size', '2', '--lr', '0.001', ...recipe], env);
    expect(r.code, r.stderr).toBe(0);
    // the command line, as a shell takes it back, is in the model file
    const args = ['train', '--out', teacher, '--preset', 'tiny', '--steps', '2', '--batch-size', '2', '--lr', '0.001', ...recipe];
    expect(metadata(join(teacher, 'model.safetensors'), 't2md.train').commands).toEqual([`t2md ${args.join(' ')}`]);
    expect(metadata(join(teacher, 'model.safetensors'), 't2md.preset')).toMatchObject({
      stages: {
        teacher: {
          ...{
            batchSize: 2,
            lr: 0.001,
            warmupSteps: 3,
            lrDecay: 'cosine',
            emaDecay: 0.5,
            captionDropout: 0.2,
            minSnrGamma: 5,
            recompute: true,
          },
          dataMix: { counting: 2, position: 3 },
        },
      },
    });
  });

  it('rejects bad flag values with exit 2 and one line', () => {
    const d = ['distill', '--teacher', teacher, '--out', join(dir, 'bad')];
    expectOneLine(t2md([...d, '--lr', '0'], env), /--lr must be a number > 0, got '0'/);
    expectOneLine(t2md([...d, '--batch-size', '0'], env), /--batch-size must be an integer in \[1, /);
    expectOneLine(t2md([...d, '--lambda-pseudo', '-1'], env), /--lambda-pseudo must be a number in \[0, /);
    expectOneLine(t2md([...d, '--lambda-mixer', 'x'], env), /--lambda-mixer must be a number/);
    expectOneLine(t2md([...d, '--scan', 'both'], env), /--scan must be one of bi, uni/);
    expectOneLine(t2md([...d, '--trainable', 'some'], env), /--trainable must be one of all, mixers, mamba/);
    expectOneLine(t2md([...d, '--layout', 'SA-XY'], env), /layout 'SA-XY' is malformed at position 4/);
    expectOneLine(t2md(['train', '--out', join(dir, 'bad'), '--lr', 'fast'], env), /--lr must be a number > 0/);
    expectOneLine(t2md(['train', '--out', join(dir, 'bad'), '--batch-size', '2.5'], env), /--batch-size must be an integer/);
    expectOneLine(t2md(['train', '--out', join(dir, 'bad'), '--ema-decay', '1'], env), /--ema-decay must be a number in \[0, /);
    expectOneLine(t2md(['train', '--out', join(dir, 'bad'), '--lr-decay', 'step'], env), /--lr-decay must be one of constant, cosine/);
    expectOneLine(t2md(['train', '--out', join(dir, 'bad'), '--min-snr', '-1'], env), /--min-snr must be a number in \[0, /);
    const mix = (v: string) => t2md(['train', '--out', join(dir, 'bad'), '--category-mix', v], env);
    expectOneLine(mix('position'), /--category-mix takes category=weight pairs separated by commas/);
    expectOneLine(mix('shapes=2'), /--category-mix names 'shapes', which is not one of singleObject/);
    expectOneLine(mix('position=101'), /--category-mix weight of 'position' must be an integer in \[0, 100\]/);
    expectOneLine(mix('position=1,position=2'), /names 'position' twice/);
    // a resumed run keeps the mix it was made with
    expectOneLine(
      t2md(['train', '--out', teacher, '--resume', '--steps', '3', '--category-mix', 'position=2'], env),
      /was made with stage 'teacher' dataMix \{"counting":2,"position":3\}, not \{"position":2\}; --resume keeps/,
    );
    expectOneLine(t2md(['distill', '--teacher', dir, '--out', join(dir, 'bad')], env), /is a folder without model\.safetensors/);
  });

  it('records the command line quoted as a shell reads it back', () => {
    expect(commandLine(['train', '--out', 'runs/a b', '--lr', '1e-3'])).toBe("t2md train --out 'runs/a b' --lr 1e-3");
    expect(commandLine(['sample', "it's"])).toBe("t2md sample 'it'\\''s'");
  });

  it('maps the flags to per-stage overrides, student changes and teacherInit', () => {
    expect(distillRunOptions({ out: 'o', teacher: 't', stage: 'distill', lambdaPseudo: 0.3, lambdaMixer: 0, teacherInit: true })).toEqual({
      overrides: { distill: { lambdaPseudo: 0.3, lambdaMixer: 0 } },
    });
    expect(
      distillRunOptions({
        out: 'o',
        teacher: 't',
        lr: 1e-3,
        batchSize: 8,
        trainable: 'all',
        recompute: true,
        teacherInit: false,
        scan: 'uni',
        layout: 'HM-WM',
      }),
    ).toEqual({
      overrides: Object.fromEntries(
        ['forcing', 'distill', 'adapt', 'finetune'].map((s) => [s, { lr: 1e-3, batchSize: 8, recompute: true, trainable: 'all' }]),
      ),
      student: { layout: 'HM-WM', mamba: { bidirectional: false } },
      teacherInit: false,
    });
    expect(distillRunOptions({ out: 'o', teacher: 't', teacherInit: true })).toEqual({});
  });

  it('bench/ablation.sh scores each rung at two seeds and writes the results file after every rung; it keeps, redoes and resumes rungs', () => {
    const out = join(dir, 'ladder');
    const res = join(dir, 'res');
    const knobs = { ...env, ALLOW_DIRTY: '1', PARALLEL: '2', PROMPTS: '6', EVAL_STEPS: '1', RESULTS_DIR: res };
    const ladder = (outdir: string, extra: Record<string, string>, steps = '2') =>
      spawnSync('bash', [SCRIPT, `${process.execPath} ${BIN}`, teacher, outdir, steps], {
        encoding: 'utf8',
        env: { ...process.env, ...knobs, ...extra },
        timeout: 240_000,
      });
    const r = ladder(out, { RUNGS: 'teacher uni' });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const files = readdirSync(res).filter((f) => f.endsWith('-ablation.json'));
    expect(files).toEqual([`${new Date().toISOString().slice(0, 10)}-wasm-ablation.json`]);
    expect(readdirSync(res)).toContain('ablation-logs.tgz');
    const file = join(res, files[0]);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    expect(doc).toMatchObject({
      kind: 'ablation',
      card: 'wasm',
      backend: 'wasm',
      settings: { steps: 2, forcingSteps: 1, prompts: 6, evalSteps: 1, seeds: [0, 1] },
    });
    expect(doc.device).toMatch(/\(wasm\)$/);
    expect(doc.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(doc.teacher).toMatchObject({ file: join(teacher, 'model.safetensors'), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(doc.rungs.map((x: { rung: string }) => x.rung)).toEqual(['teacher', 'uni']);
    const [t, uni] = doc.rungs;
    expect(doc.teacher.evals).toEqual(t.evals);
    for (const rung of doc.rungs) {
      expect(rung.run).toMatchObject({ commit: doc.commit, card: 'wasm', backend: 'wasm' });
      expect(rung.evals.map((e: { seed: number }) => e.seed)).toEqual([0, 1]);
      for (const e of rung.evals) {
        expect(e.overall).toBeGreaterThanOrEqual(0);
        expect(e.overall).toBeLessThanOrEqual(1);
        expect(Object.keys(e.categories).sort()).toEqual([
          'colorAttribution',
          'colors',
          'counting',
          'position',
          'singleObject',
          'twoObjects',
        ]);
      }
      expect(rung.gpuMinutes).toBeCloseTo((rung.trainSeconds + rung.evalSeconds) / 60, 1); // minutes to 2 decimals
      expect(rung.evalCommands).toEqual(
        [0, 1].map((s) => expect.stringMatching(new RegExp(`^t2md eval --model .+ --prompts 6 --steps 1 --seed ${s} --json$`))),
      );
    }
    expect(t).toMatchObject({ steps: 0, commands: [] });
    expect(uni).toMatchObject({ steps: 2, forcingSteps: 1 });
    expect(uni.commands).toEqual([
      `t2md distill --teacher ${join(teacher, 'model.safetensors')} --out uni --stage forcing --steps 1 --scan uni`,
      `t2md distill --teacher ${join(teacher, 'model.safetensors')} --out uni --stage distill --steps 1 --scan uni`,
    ]);
    expect(metadata(join(out, 'uni', 'model.safetensors'), 't2md.config')).toMatchObject({ mamba: { bidirectional: false } });
    // the results check accepts it (the docs' table is tested on this shape in apps/docs/test/ablation.test.ts)
    expect(checkResults(res, resolve(__dirname, '..', '..', '..'))).toEqual([]);

    // Run again: a finished rung is kept; one cut off mid-way (no rung.json yet) is redone from an empty folder.
    rmSync(join(out, 'teacher', 'rung.json'));
    writeFileSync(join(out, 'teacher', 'eval-0.json'), '{"half": ');
    const redo = ladder(out, { RUNGS: 'teacher uni' });
    expect(redo.status, redo.stderr).toBe(0);
    expect(redo.stdout).toMatch(/\[uni\] kept/);
    expect(redo.stdout).toMatch(/\[teacher\] evaluating/);
    expect(JSON.parse(readFileSync(join(out, 'teacher', 'eval-0.json'), 'utf8')).overall).toBe(t.evals[0].overall);
    expect(JSON.parse(readFileSync(file, 'utf8')).rungs).toHaveLength(2);

    // RESUME in a fresh folder (a fresh GPU machine) keeps the file's rungs; other settings are refused.
    const resumed = ladder(join(dir, 'ladder2'), { RUNGS: 'teacher uni', RESUME: file });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout.match(/\] kept/g)).toHaveLength(2);
    const other = ladder(join(dir, 'ladder3'), { RESUME: file }, '4');
    expect(other.status).toBe(2);
    expect(other.stderr.trim()).toMatch(
      /^ablation\.sh: RESUME=.+ was run under other settings \(steps differ\); run with the same settings or without RESUME\.$/,
    );

    // DEADLINE: no rung starts without the time to finish; what finished is still in the results file.
    const late = ladder(join(dir, 'ladder4'), { RUNGS: 'scratch', DEADLINE: '1', RESULTS_DIR: join(dir, 'res4') });
    expect(late.status).toBe(1);
    expect(late.stdout).toMatch(/\[scratch\] not started: -?\d+ s left before DEADLINE/);
    expect(JSON.parse(readFileSync(join(dir, 'res4', files[0]), 'utf8')).rungs).toEqual([]);

    // Bad arguments: one sentence on stderr, exit 2.
    const bad = ladder(out, {}, '1');
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toBe("ablation.sh: STEPS must be an integer >= 2 (the +forcing rungs split it), got '1'.");
    const seeds = ladder(out, { SEEDS: '0 0' });
    expect(seeds.status).toBe(2);
    expect(seeds.stderr.trim()).toBe(
      "ablation.sh: SEEDS must be distinct integers >= 0 separated by spaces (two give the spread), got '0 0'.",
    );
  });
});
