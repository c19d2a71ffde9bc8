/**
 * The `t2md` command for the GPU machine, which has no Node modules: bundle it with
 * `../shared/device/pack.sh bench/gpu.ts` and run `bash .gpu/run.sh node .gpu/gpu.mjs bench scaling --json`.
 * Dawn's binding is imported statically here so the bundle carries it (initBackend's own import of
 * `webgpu` is dynamic, to keep browser bundles free of it), and `navigator.gpu` is set before the CLI
 * starts, which initBackend then uses.
 */
import { main } from '@t2md/cli';
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const flags = (process.env.T2MD_DAWN_FLAGS ?? '')
  .split(';')
  .map((s) => s.trim())
  .filter(Boolean);
Object.defineProperty(globalThis, 'navigator', { value: { gpu: create(flags) }, configurable: true, writable: true });
process.exit(await main(process.argv));
