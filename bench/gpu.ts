/**
 * The `t2md` command for the GPU machine, which has no Node modules: bundle it with `bash bench/pack.sh`
 * (which stamps the source it was built from, then runs `../shared/device/pack.sh bench/gpu.ts`) and run
 * `bash .gpu/run.sh node .gpu/gpu.mjs bench scaling --json`.
 *
 * Dawn's binding is imported statically here so the bundle carries it (initBackend's own import of
 * `webgpu` is dynamic, to keep browser bundles free of it), and `navigator.gpu` is set before the CLI
 * starts, which initBackend then uses. Dawn is created with GPU timestamps unquantised (so profiled
 * passes read their real time), plus any `;`-separated flags in T2MD_DAWN_FLAGS. The CLI learns the
 * source stamp, the flags and the `webgpu` version through `main`'s context and records them with
 * every bench row: the copy of the tree on the GPU machine may carry a stale .git, so git there is not
 * asked.
 */
import { main, type SourceStamp } from '@t2md/cli';
import { create, globals } from 'webgpu';
import webgpuPackage from 'webgpu/package.json' with { type: 'json' };
// written by bench/pack.sh from git when the bundle is built; a bundle built without it does not build
import stamp from './.source-stamp.json' with { type: 'json' };

const extra = (process.env.T2MD_DAWN_FLAGS ?? '')
  .split(';')
  .map((s) => s.trim())
  .filter(Boolean);
const flags = ['disable-dawn-features=timestamp_quantization', ...extra];
Object.assign(globalThis, globals);
Object.defineProperty(globalThis, 'navigator', { value: { gpu: create(flags) }, configurable: true, writable: true });
const source: SourceStamp = { commit: stamp.commit, dirty: stamp.dirty, from: 'bundle' };
process.exit(await main(process.argv, { source, dawnFlags: flags, dawn: webgpuPackage.version }));
