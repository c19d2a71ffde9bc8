// Every code example on the site (apps/docs/examples/*.ts, included in the package pages) must compile
// against the BUILT packages, exactly as a user's code would.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

describe('site examples', () => {
  it('has one example per package', () => {
    const files = readdirSync(join(here, 'examples')).sort();
    expect(files).toEqual(['cli.ts', 'core.ts', 'distill.ts', 'dit.ts', 'sampler.ts', 'shapes.ts', 'ssm.ts']);
  });

  it('type-checks every example, the components and the tests against the built packages (tsc -p apps/docs/tsconfig.json)', async () => {
    let out = '';
    let code = 0;
    try {
      await promisify(execFile)(process.execPath, [tsc, '-p', join(here, 'tsconfig.json'), '--pretty', 'false'], { cwd: here });
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      code = e.code ?? 1;
      out = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    }
    // A failure lists tsc's diagnostics (a missing dist/index.d.ts means: run npm run build first).
    expect(out, 'tsc diagnostics').toBe('');
    expect(code).toBe(0);
  });
});
