/**
 * An empty project that installs the packed tarballs as a user would, with `npm ci --offline`: the
 * lockfile is derived from the repository's own (same versions, same integrity hashes), so every
 * third-party package comes from npm's cache, filled by the repository's `npm ci`, and npm needs
 * neither the registry nor its metadata. (`npm install <tarballs> --offline` would need the packuments
 * of every dependency, which `npm ci` never fetches.)
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [key: string]: unknown;
}

/** A packed workspace package: its folder in the repository and its tarball. */
export interface Packed {
  dir: string; // e.g. 'packages/core'
  tarball: string; // absolute path, in the consumer project's parent folder
}

/** `packages/cli/node_modules/x` in the repository's lock is `node_modules/@t2md/cli/node_modules/x` in the consumer's. */
function consumerKey(key: string, names: Map<string, string>): string {
  for (const [dir, name] of names) {
    if (key === dir) return `node_modules/${name}`;
    if (key.startsWith(`${dir}/`)) return `node_modules/${name}/${key.slice(dir.length + 1)}`;
  }
  return key;
}

/** Node's lookup, on lockfile keys: `<from>/node_modules/<name>`, then each enclosing folder's. */
function resolveKey(lock: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let at = from;
  for (;;) {
    const key = at === '' ? `node_modules/${name}` : `${at}/node_modules/${name}`;
    if (lock[key] != null) return key;
    if (at === '') return undefined;
    const cut = at.lastIndexOf('/node_modules/');
    at = cut < 0 ? '' : at.slice(0, cut);
  }
}

/**
 * Writes `app/package.json` and `app/package-lock.json` for a project depending on `packed` (tarballs
 * referenced as `file:../<name>.tgz`), with every transitive dependency taken from `rootLockPath`.
 */
export function writeConsumerProject(app: string, rootLockPath: string, root: string, packed: Packed[]): void {
  const lock = (JSON.parse(readFileSync(rootLockPath, 'utf8')) as { packages: Record<string, LockEntry> }).packages;
  const names = new Map(packed.map((p) => [p.dir, JSON.parse(readFileSync(join(root, p.dir, 'package.json'), 'utf8')).name as string]));
  const byName = new Map([...names].map(([dir, name]) => [name, dir]));
  const spec = (p: Packed) => `file:../${basename(p.tarball)}`;
  const dependencies = Object.fromEntries(packed.map((p) => [names.get(p.dir)!, spec(p)]));
  const out: Record<string, LockEntry> = { '': { name: 'app', dependencies } };

  const visit = (key: string, entry: LockEntry) => {
    const target = consumerKey(key, names);
    if (out[target] != null) return;
    const { dev, devOptional, peer, link, ...kept } = entry;
    void [dev, devOptional, peer, link];
    out[target] = kept;
    const wanted = { ...entry.dependencies, ...entry.optionalDependencies, ...entry.peerDependencies };
    for (const dep of Object.keys(wanted)) {
      const workspace = byName.get(dep);
      const found = workspace ?? resolveKey(lock, key, dep);
      if (found == null) {
        const optional = entry.optionalDependencies?.[dep] != null || entry.peerDependenciesMeta?.[dep]?.optional === true;
        if (optional || entry.peerDependencies?.[dep] != null) continue; // not installed for this platform, or an unmet optional peer
        throw new Error(`${dep}, needed by ${key}, is not in the repository's package-lock.json`);
      }
      if (workspace == null) visit(found, lock[found]);
    }
  };
  for (const p of packed) {
    const manifest = JSON.parse(readFileSync(join(root, p.dir, 'package.json'), 'utf8'));
    const integrity = `sha512-${createHash('sha512').update(readFileSync(p.tarball)).digest('base64')}`;
    visit(p.dir, {
      version: manifest.version,
      resolved: spec(p),
      integrity,
      license: manifest.license,
      dependencies: manifest.dependencies,
      ...(manifest.bin ? { bin: manifest.bin } : {}),
      ...(manifest.engines ? { engines: manifest.engines } : {}),
    });
  }
  writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'app', private: true, type: 'module', dependencies }, null, 2)}\n`);
  writeFileSync(
    join(app, 'package-lock.json'),
    `${JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages: out }, null, 2)}\n`,
  );
}
