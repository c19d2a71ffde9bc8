/**
 * Packs every publishable package as `npm publish` would, installs the tarballs into an empty folder the
 * way a user does (offline: from npm's cache, filled by `npm ci`), imports each from plain Node ESM and
 * from TypeScript (nodenext resolution), and runs what a new user copies first: every package README's
 * first code block and every example of the docs site.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { transformSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { writeConsumerProject } from './consumer.js';
import { readmeSnippet } from './snippets.js';

const root = resolve(__dirname, '..');
const packages = readdirSync(join(root, 'packages')).filter((d) => !d.startsWith('.'));
const work = mkdtempSync(join(tmpdir(), 't2md-pack-'));
// npm must never reach the registry here: everything comes from the tarballs and npm's cache.
const env = {
  ...process.env,
  npm_config_update_notifier: 'false',
  npm_config_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
};
const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
/** Runs a command the way a user would in the consumer project; never throws. */
const attempt = (cmd: string, args: string[], cwd: string, timeout = 300_000) => {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env, timeout });
  return { code: r.status, out: `${r.stdout}${r.stderr}`, stderr: r.stderr };
};

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('release tooling', () => {
  it('changesets reads the config and the pending changesets', () => {
    const out = run('npx', ['--no-install', 'changeset', 'status'], root);
    expect(out).toMatch(/Packages to be bumped/);
  });
});

describe('published packages', () => {
  const tarballs: string[] = [];
  const packed: string[] = [];

  it.each(packages)('@t2md/%s packs dist, types, README and LICENSE but no tests or sources', (name) => {
    const out = run('npm', ['pack', '--json', '--pack-destination', work], join(root, 'packages', name));
    const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    const files = info.files.map((f) => f.path);
    expect(files).toContain('package.json');
    expect(files).toContain('README.md');
    expect(files).toContain('LICENSE');
    expect(readFileSync(join(root, 'packages', name, 'LICENSE'), 'utf8')).toBe(readFileSync(join(root, 'LICENSE'), 'utf8'));
    const manifest = JSON.parse(readFileSync(join(root, 'packages', name, 'package.json'), 'utf8'));
    expect(manifest.engines?.node, 'engines.node').toMatch(/^>=\d+/);
    expect(manifest.repository, 'a repository field must point somewhere real, or be absent').toBeUndefined();
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files.filter((f) => /\.test\.|(^|\/)src\/|(^|\/)test\//.test(f))).toEqual([]);
    tarballs.push(join(work, info.filename));
    packed.push(name);
  });

  it('installs into an empty project and imports from Node ESM and TypeScript', () => {
    expect(tarballs).toHaveLength(packages.length);
    const app = join(work, 'app');
    mkdirSync(app);
    writeConsumerProject(
      app,
      join(root, 'package-lock.json'),
      root,
      tarballs.map((tarball, i) => ({ dir: `packages/${packed[i]}`, tarball })),
    );
    run('npm', ['ci', '--offline'], app);
    for (const name of packages) {
      const pkg = JSON.parse(readFileSync(join(app, 'node_modules', '@t2md', name, 'package.json'), 'utf8'));
      expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/);
      const keys = run(
        'node',
        ['--input-type=module', '-e', `const m = await import('@t2md/${name}'); console.log(Object.keys(m).length); process.exit(0);`],
        app,
      );
      expect(Number(keys.trim()), `@t2md/${name} exports`).toBeGreaterThan(0);
    }
    // The installed core works for real: a backend starts and a gradient flows.
    const grad = run(
      'node',
      [
        '--input-type=module',
        '-e',
        "import * as tf from '@tensorflow/tfjs-core'; import { initBackend, geluTanh } from '@t2md/core';" +
          "await initBackend({backend: 'cpu'}); const g = tf.grad((x) => tf.sum(geluTanh(x)))(tf.tensor([0, 1]));" +
          'console.log(JSON.stringify(Array.from(await g.data()))); process.exit(0);',
      ],
      app,
    );
    const [g0, g1] = JSON.parse(grad.trim());
    expect(g0).toBeCloseTo(0.5, 5);
    expect(g1).toBeCloseTo(1.083, 3);
    // Types resolve through `exports` under nodenext, as a TypeScript user would compile.
    writeFileSync(
      join(app, 'check.ts'),
      packages.map((n) => `import * as ${n} from '@t2md/${n}';\nvoid ${n};`).join('\n') +
        "\nimport { initBackend, type BackendInfo } from '@t2md/core';\nconst p: Promise<BackendInfo> = initBackend({ backend: 'cpu' });\nvoid p;\n",
    );
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    run(
      'node',
      [
        tsc,
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        '--skipLibCheck',
        '--types',
        'node',
        '--typeRoots',
        join(root, 'node_modules', '@types'),
        'check.ts',
      ],
      app,
    );
  });

  // What a new user copies first must run as copied: plain ESM JavaScript (or a shell line) in a
  // project that has only the published packages. Backends: auto (wasm where no hardware GPU exists).
  it.each(packages)('the first code block of the @t2md/%s README runs in that project', (name) => {
    const app = join(work, 'app');
    const snippet = readmeSnippet(join(root, 'packages', name, 'README.md'));
    const file = join(app, `readme-${name}.${snippet.lang === 'js' ? 'mjs' : 'sh'}`);
    writeFileSync(file, snippet.code);
    const r = snippet.lang === 'js' ? attempt('node', [file], app) : attempt('bash', ['-eo', 'pipefail', file], app);
    expect(r.code, `${file}:\n${r.out}`).toBe(0);
    // Nothing on stderr but the CLI's own progress lines: no native probing noise, no tfjs warnings.
    if (snippet.lang === 'js') expect(r.stderr, `${file} wrote to stderr`).toBe('');
    else expect(r.stderr.split('\n').filter((l) => l !== '' && !/^sample \d+\/\d+ steps \| /.test(l))).toEqual([]);
  });

  it.each(readdirSync(join(root, 'apps', 'docs', 'examples')))('the docs example %s runs in that project', (file) => {
    const app = join(work, 'app');
    const source = readFileSync(join(root, 'apps', 'docs', 'examples', file), 'utf8');
    const out = join(app, `docs-${file.replace(/\.ts$/, '.mjs')}`);
    writeFileSync(out, transformSync(source, { loader: 'ts', format: 'esm', target: 'node20' }).code);
    const r = attempt('node', [out], app);
    expect(r.code, `${file}:\n${r.out}`).toBe(0);
  });

  // Emscripten's glue in the wasm backend used to turn any later uncaught error into exit 7 with a
  // trace inside tf-backend-wasm; Node's own handling must stay: exit 1, the user's trace.
  it.each(['cpu', 'wasm', ...(process.env.T2MD_REQUIRE_WEBGPU === '1' ? ['webgpu'] : [])])(
    'an uncaught error after initBackend(%s) keeps exit code 1 and its trace',
    (backend) => {
      const app = join(work, 'app');
      for (const [kind, code] of [
        ['thrown later', "setTimeout(() => { throw new Error('user error'); }, 1);"],
        ['rejected', "Promise.reject(new Error('user error'));"],
      ]) {
        const file = join(app, `throw-${backend}.mjs`);
        writeFileSync(file, `import { initBackend } from '@t2md/core';\nawait initBackend({ backend: '${backend}' });\n${code}\n`);
        const r = attempt('node', [file], app);
        expect(r.code, `${kind}: ${r.out}`).toBe(1);
        expect(r.stderr).toMatch(/Error: user error\n\s+at .*throw-\w+\.mjs:3/);
        expect(r.stderr).not.toMatch(/tf-backend-wasm/);
      }
    },
  );
});
