/**
 * `npx t2md` from the repository root, as the README says, right after `npm ci`: npm must have linked
 * `node_modules/.bin/t2md` to a committed file (dist/ does not exist before `npm run build`), that
 * file must say what to do when the build is missing, and npx must never ask the registry, where
 * the unscoped name `t2md` could belong to anyone.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(__dirname, '..');
const cliDir = join(root, 'packages', 'cli');
const manifest = JSON.parse(readFileSync(join(cliDir, 'package.json'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 't2md-npx-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Offline: were the local bin missing, npx would fail here instead of fetching a stranger's package.
const env = {
  ...process.env,
  npm_config_offline: 'true',
  npm_config_update_notifier: 'false',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
};
const npx = (args: string[], cwd: string) => spawnSync('npx', args, { cwd, env, encoding: 'utf8', timeout: 120_000 });

describe('npx t2md in a clone', () => {
  it('links the bin to a committed, executable file, not to the build', () => {
    const bin = manifest.bin.t2md as string;
    expect(bin).not.toMatch(/dist\//);
    const file = join(cliDir, bin);
    expect(statSync(file).mode & 0o111, `${bin} is executable`).not.toBe(0);
    expect(manifest.files).toContain(bin.replace(/^\.\//, '').split('/')[0]);
    let tracked = '';
    try {
      tracked = execFileSync('git', ['ls-files', '-s', file], { cwd: root, encoding: 'utf8' });
    } catch {
      tracked = 'not a git checkout'; // a source tarball: the file's presence above is what counts
    }
    if (tracked !== 'not a git checkout') expect(tracked, `${bin} must be committed with mode 755`).toMatch(/^100755 /);
    expect(realpathSync(join(root, 'node_modules', '.bin', 't2md'))).toBe(realpathSync(file));
  });

  it('is linked by npm before anything is built, and asks for the build when run then', () => {
    // A workspace holding only the CLI's committed files, as a fresh clone has them, installed offline.
    const clone = join(work, 'clone');
    mkdirSync(join(clone, 'packages', 'cli'), { recursive: true });
    writeFileSync(join(clone, 'package.json'), JSON.stringify({ name: 'clone', private: true, workspaces: ['packages/*'] }));
    const { dependencies, devDependencies, ...bare } = manifest; // the bin is what is under test, not the dependencies
    void [dependencies, devDependencies];
    writeFileSync(join(clone, 'packages', 'cli', 'package.json'), JSON.stringify(bare));
    cpSync(join(cliDir, 'bin'), join(clone, 'packages', 'cli', 'bin'), { recursive: true });
    execFileSync('npm', ['install', '--ignore-scripts'], { cwd: clone, env, stdio: 'pipe' });
    expect(existsSync(join(clone, 'node_modules', '.bin', 't2md'))).toBe(true);
    const r = npx(['t2md', '--version'], clone);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('t2md: the command is not built yet; run `npm run build` at the repository root first.\n');
  });

  it('runs --version and info from the repository root once built', () => {
    const version = npx(['t2md', '--version'], root);
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe(manifest.version);
    const info = npx(['t2md', 'info', '--json'], root);
    expect(info.status, info.stderr).toBe(0);
    expect(info.stderr).toBe('');
    expect(JSON.parse(info.stdout).versions['@t2md/cli']).toBe(manifest.version);
  });
});
