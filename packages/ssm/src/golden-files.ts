/**
 * Test-only: the golden vectors in `packages/ssm/golden/` (made by `golden/generate.mjs`, format in
 * its README). Not exported from the package: the files are not published.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const GOLDEN_DIR = fileURLToPath(new URL('../golden/', import.meta.url));

export interface GoldenTensor {
  shape: number[];
  data: number[];
}

export interface Golden<Options> {
  op: 'ssdScan' | 'selectiveScan';
  name: string;
  options: Options;
  inputs: Record<string, GoldenTensor>;
  outputs: Record<string, GoldenTensor>;
  upstream: Record<string, GoldenTensor>;
  grads: Record<string, GoldenTensor>;
}

/** Every case of `op` in the folder, by file name; throws when there are none (a missing file is a failure). */
export function goldenCases<Options>(op: Golden<Options>['op']): Golden<Options>[] {
  const cases = readdirSync(GOLDEN_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(`${GOLDEN_DIR}${f}`, 'utf8')) as Golden<Options>)
    .filter((g) => g.op === op);
  if (cases.length === 0) throw new Error(`no ${op} golden vectors in ${GOLDEN_DIR}; run node packages/ssm/golden/generate.mjs`);
  return cases;
}
