// Builds the site into apps/docs/dist: API reference from the packages' TSDoc (TypeDoc → markdown),
// the wasm backend's binaries for the playground's fallback, benchmark results, then VitePress.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(here, '..', '..');
const require = createRequire(import.meta.url);
const bin = (pkg, file) => join(dirname(require.resolve(`${pkg}/package.json`)), file);
const run = (script, args) => execFileSync(process.execPath, [script, ...args], { cwd: here, stdio: 'inherit' });

// 1. API reference.
rmSync(join(here, 'api'), { recursive: true, force: true });
const packages = ['core', 'ssm', 'dit', 'sampler', 'distill', 'shapes', 'cli'];
run(bin('typedoc', 'bin/typedoc'), [
  ...packages.flatMap((p) => ['--entryPoints', join(root, 'packages', p, 'src', 'index.ts')]),
  '--tsconfig', join(here, 'typedoc.tsconfig.json'),
  '--plugin', 'typedoc-plugin-markdown',
  '--out', join(here, 'api'),
  '--readme', 'none',
  '--entryFileName', 'index.md',
  '--hidePageHeader',
  '--excludePrivate', '--excludeInternal',
  '--logLevel', 'Warn',
]);

// 2. The wasm backend's binaries, served next to the site for the playground's fallback.
const wasmDir = join(here, 'public', 'wasm');
mkdirSync(wasmDir, { recursive: true });
const wasmSrc = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
for (const f of readdirSync(join(wasmSrc, 'dist')).filter((f) => f.endsWith('.wasm'))) cpSync(join(wasmSrc, 'dist', f), join(wasmDir, f));

// 3. Shipped models, when the shapes package has them.
const models = join(root, 'packages', 'shapes', 'models');
if (existsSync(models)) cpSync(models, join(here, 'public', 'models'), { recursive: true });

// 4. The site.
run(bin('vitepress', 'bin/vitepress.js'), ['build', '.']);
