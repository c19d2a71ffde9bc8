/**
 * Packs every publishable package as `npm publish` would, installs the tarballs into an empty folder the
 * way a user does, and imports each from plain Node ESM and from TypeScript (nodenext resolution).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..');
const packages = readdirSync(join(root, 'packages')).filter((d) => !d.startsWith('.'));
const work = mkdtempSync(join(tmpdir(), 't2md-pack-'));
const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('release tooling', () => {
  it('changesets reads the config and the pending changesets', () => {
    const out = run('npx', ['--no-install', 'changeset', 'status'], root);
    expect(out).toMatch(/Packages to be bumped/);
  });
});

describe('published packages', () => {
  const tarballs: string[] = [];

  it.each(packages)('@t2md/%s packs dist and types but no tests or sources', (name) => {
    const out = run('npm', ['pack', '--json', '--pack-destination', work], join(root, 'packages', name));
    const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    const files = info.files.map((f) => f.path);
    expect(files).toContain('package.json');
    expect(files).toContain('README.md');
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files.filter((f) => /\.test\.|(^|\/)src\/|(^|\/)test\//.test(f))).toEqual([]);
    tarballs.push(join(work, info.filename));
  });

  it('installs into an empty project and imports from Node ESM and TypeScript', () => {
    expect(tarballs).toHaveLength(packages.length);
    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tarballs], app);
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
});
