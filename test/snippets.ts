/**
 * The code a new user copies first: each package README's first fenced block, and the docs site's
 * examples. The pack test runs them in an empty project that installed the packed tarballs.
 */
import { readFileSync } from 'node:fs';

export interface Snippet {
  lang: string;
  code: string;
}

/** The first fenced code block of a markdown text (```lang ... ```), or undefined when there is none. */
export function firstCodeBlock(markdown: string): Snippet | undefined {
  const m = /^```([\w-]*)[^\n]*\n([\s\S]*?)^```\s*$/m.exec(markdown);
  return m ? { lang: m[1], code: m[2] } : undefined;
}

/** The README's first block, which must be plain JavaScript (js) or shell (sh): what a user can paste as is. */
export function readmeSnippet(path: string): Snippet {
  const block = firstCodeBlock(readFileSync(path, 'utf8'));
  if (block == null) throw new Error(`${path} has no code block`);
  if (block.lang !== 'js' && block.lang !== 'sh') {
    throw new Error(
      `${path}: the first code block is '${block.lang || 'plain'}'; make it a complete js or sh example a user can run as copied`,
    );
  }
  return block;
}
