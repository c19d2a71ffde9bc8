#!/usr/bin/env node
// The `t2md` entry npm links at install time. It is committed, not built, so that `npm ci` in a fresh
// clone links `node_modules/.bin/t2md` before `npm run build` has made dist/ (npm skips a bin whose
// file is missing, and `npx t2md` would then ask the registry for an unrelated package of that name).
import { existsSync } from 'node:fs';

const built = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(built)) {
  process.stderr.write('t2md: the command is not built yet; run `npm run build` at the repository root first.\n');
  process.exit(1);
}
await import(built.href);
