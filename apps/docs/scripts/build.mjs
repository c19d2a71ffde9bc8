// Builds the site into apps/docs/dist: API reference from the packages' TSDoc (TypeDoc → markdown),
// the wasm backend's binaries for the playground's fallback, the shipped models, then VitePress.
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
const t0 = Date.now();
const lap = (what) => console.log(`docs: ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

// 1. API reference (options in typedoc.json; sources read from packages/*/src, comments sanitised so
//    TSDoc text such as `<T>` or `{{` cannot be taken for Vue template syntax).
rmSync(join(here, 'api'), { recursive: true, force: true });
run(bin('typedoc', 'bin/typedoc'), ['--options', join(here, 'typedoc.json')]);
lap('API reference');

// 2. The wasm backend's binaries, served next to the site for the playground's fallback.
const wasmDir = join(here, 'public', 'wasm');
rmSync(wasmDir, { recursive: true, force: true });
mkdirSync(wasmDir, { recursive: true });
const wasmSrc = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
for (const f of readdirSync(join(wasmSrc, 'dist')).filter((f) => f.endsWith('.wasm'))) cpSync(join(wasmSrc, 'dist', f), join(wasmDir, f));

// 3. The shipped models of @t2md/shapes (T2MD_DOCS_MODELS points elsewhere, e.g. for development).
const models = process.env.T2MD_DOCS_MODELS || join(root, 'packages', 'shapes', 'models');
const modelDir = join(here, 'public', 'models');
rmSync(modelDir, { recursive: true, force: true });
if (existsSync(models)) {
  mkdirSync(modelDir, { recursive: true });
  for (const f of readdirSync(models).filter((f) => f.endsWith('.safetensors'))) cpSync(join(models, f), join(modelDir, f));
  console.log(`docs: models from ${models}: ${readdirSync(modelDir).join(', ') || 'none'}`);
} else {
  console.warn(`docs: ${models} does not exist; the playground will say that its models are missing`);
}

// 4. The site.
run(bin('vitepress', 'bin/vitepress.js'), ['build', '.']);
lap('site built');
