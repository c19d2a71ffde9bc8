import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Versions of the t2md packages and tfjs as installed (read from their package.json). */
export function packageVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [
    '@t2md/core',
    '@t2md/ssm',
    '@t2md/dit',
    '@t2md/sampler',
    '@t2md/distill',
    '@t2md/shapes',
    '@t2md/cli',
    '@tensorflow/tfjs-core',
    '@tensorflow/tfjs-backend-webgpu',
    '@tensorflow/tfjs-backend-wasm',
    'webgpu',
  ]) {
    try {
      out[name] = (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      // not installed (e.g. a bundle on the GPU machine): leave it out rather than guess
    }
  }
  return out;
}

/** The installed @t2md/cli version (for `t2md --version`). */
export function cliVersion(): string {
  // a bundle (the GPU machine's) has no package.json beside it: say so rather than fail at start-up
  return packageVersions()['@t2md/cli'] ?? 'unknown (bundled without its package.json)';
}
