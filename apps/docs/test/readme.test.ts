// The root README's figures and its word on the shipped models are generated, not typed: the figures
// from bench/results/ by the same code as the docs' benchmarks page (bench-summary.ts), the notice
// from the shipped model files' metadata (@t2md/shapes' placeholderNotice). This test fails when either
// block has drifted; T2MD_WRITE_README=1 rewrites both blocks in place.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ResultFile, readmeFigures } from '../components/bench-summary.js';
import { ROOT, shippedModelsNotice } from './shipped.js';

const README = join(ROOT, 'README.md');
const RESULTS = join(ROOT, 'bench', 'results');

/** bench/results/*.json, newest first (as the benchmarks page reads them). */
const files: ResultFile[] = readdirSync(RESULTS)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .reverse()
  .map((f) => ({ name: f.replace(/\.json$/, ''), data: JSON.parse(readFileSync(join(RESULTS, f), 'utf8')) }));

const notice = shippedModelsNotice();
const expected: Record<string, string> = {
  'bench-figures': readmeFigures(files),
  'models-notice': notice ? `> **Note:** ${notice}` : '',
};

/** The text between `<!-- name ... -->` and `<!-- /name -->`, trimmed; undefined without both markers. */
const blockRe = (name: string) => new RegExp(`(<!-- ${name}\\b[^>]*-->\\n)([\\s\\S]*?)(\\n?<!-- /${name} -->)`);

if (process.env.T2MD_WRITE_README === '1') {
  let text = readFileSync(README, 'utf8');
  for (const [name, body] of Object.entries(expected)) {
    text = text.replace(
      blockRe(name),
      (_, open: string, _old: string, close: string) => `${open}${body}${body ? '\n' : ''}${close.trim()}`,
    );
  }
  writeFileSync(README, text);
}

const readme = readFileSync(README, 'utf8');

describe('README.md', () => {
  it.each(Object.keys(expected))('holds the %s block as generated (T2MD_WRITE_README=1 rewrites it)', (name) => {
    const m = blockRe(name).exec(readme);
    expect(m, `README.md has no <!-- ${name} --> … <!-- /${name} --> block`).not.toBeNull();
    expect(m![2].trim()).toBe(expected[name]);
  });

  it('quotes the training figures of bench/results/ at the batch the benchmarks page shows', () => {
    // the figures are the page's headlines: the largest batch both T2MD.js and PyTorch ran
    expect(expected['bench-figures']).toMatch(/\| training step \(teacher\), batch [\d,]+ \| [\d,]+ samples\/s \| /);
    const quoted = readme.replace(blockRe('bench-figures'), '');
    // outside the block, no samples/s figure of its own
    expect(quoted).not.toMatch(/[\d,]{4,} samples\/s/);
  });

  it('says the shipped models are placeholders exactly while their metadata says so', () => {
    const outside = readme.replace(blockRe('models-notice'), '');
    expect(outside).not.toMatch(/placeholder/i);
    expect(readme.includes('placeholders')).toBe(notice != null);
  });
});
