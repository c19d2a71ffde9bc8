import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { expectOneLine, t2md } from './cli.js';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

describe('t2md info', () => {
  it('--json reports webgpu on SwiftShader as software when asked for webgpu', (ctx) => {
    const r = t2md(['info', '--json'], { T2MD_BACKEND: 'webgpu', VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER });
    if (r.code !== 0 && process.env.T2MD_REQUIRE_WEBGPU !== '1') return ctx.skip('no WebGPU adapter here');
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout); // stdout is one JSON document and nothing else
    console.log(`t2md info: ${info.backend} on ${info.adapter?.vendor}/${info.adapter?.architecture}`);
    expect(info.backend).toBe('webgpu');
    expect(info.adapter.vendor).toBeTypeOf('string');
    expect(info.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(info.versions['@t2md/core']).toMatch(/^\d+\.\d+\.\d+/);
    if ((process.env.VK_ICD_FILENAMES ?? SWIFTSHADER) === SWIFTSHADER) {
      expect(info.adapter.architecture).toBe('swiftshader');
      expect(info.software).toBe(true);
    }
  });

  it('auto picks wasm over a software adapter, names it and says why', () => {
    const r = t2md(['info', '--json'], { T2MD_BACKEND: undefined, VK_ICD_FILENAMES: SWIFTSHADER });
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info).toMatchObject({ backend: 'wasm', software: true });
    expect(info.reason).toMatch(/^auto took wasm: the only WebGPU adapter is software \(google \/ swiftshader/);
    expect(info.adapters).toContainEqual(expect.objectContaining({ vendor: 'google', architecture: 'swiftshader', software: true }));
    // named as results files name it (bench/ablation.sh reads these), with the source it runs from
    expect(info).toMatchObject({ card: 'wasm', driver: null, source: { from: 'git' } });
    expect(info.device).toMatch(/ ×\d+ \(wasm\)$/);
    expect(info.source.commit).toMatch(/^[0-9a-f]{40}$/);
  });

  // What Dawn, the Vulkan loader and Mesa print while looking for GPUs (XDG_RUNTIME_DIR, lavapipe's
  // rejection) must not reach the user: auto probes in a child process and keeps it as probeLog.
  it.each([
    ['the system Vulkan drivers', { VK_ICD_FILENAMES: undefined }],
    ['SwiftShader', { VK_ICD_FILENAMES: SWIFTSHADER }],
  ])('prints nothing on stderr but its own lines with %s and no XDG_RUNTIME_DIR', (_, vk) => {
    const env = { T2MD_BACKEND: undefined, XDG_RUNTIME_DIR: undefined, ...vk };
    const text = t2md(['info'], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toBe('');
    expect(text.stdout).toMatch(
      /^backend {3}wasm \(software\)\nwhy {7}auto took wasm: .+\nwasm {6}(threaded-simd|simd), \d threads?: .+\nadapter {3}none in use\nadapters {2}\S/,
    );
    const json = t2md(['info', '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stderr).toBe('');
    expect(Array.isArray(JSON.parse(json.stdout).probeLog)).toBe(true);
  });

  it('says which wasm build runs on how many threads, and T2MD_WASM_THREADS sets the count', () => {
    const cores = availableParallelism();
    const auto = t2md(['info', '--json', '--backend', 'wasm'], { T2MD_WASM_THREADS: undefined });
    expect(auto.code, auto.stderr).toBe(0);
    const { wasm } = JSON.parse(auto.stdout);
    console.log(`t2md info: wasm ${JSON.stringify(wasm)} on ${cores} cores`);
    // Node has SharedArrayBuffer: the threaded build runs whenever there is more than one core
    expect(wasm).toEqual(
      cores > 1
        ? { build: 'threaded-simd', threads: Math.min(cores, 8), reason: `${cores} cores available (Node has SharedArrayBuffer)` }
        : { build: 'simd', threads: 1, reason: '1 core available: one thread needs no workers' },
    );
    const two = JSON.parse(t2md(['info', '--json', '--backend', 'wasm'], { T2MD_WASM_THREADS: '2' }).stdout).wasm;
    expect(two).toEqual({ build: 'threaded-simd', threads: 2, reason: 'T2MD_WASM_THREADS=2 (Node has SharedArrayBuffer)' });
    const one = t2md(['info', '--backend', 'wasm'], { T2MD_WASM_THREADS: '1' });
    expect(one.stdout).toMatch(/\nwasm {6}simd, 1 thread: T2MD_WASM_THREADS=1: one thread needs no workers\n/);
    expectOneLine(
      t2md(['info', '--backend', 'wasm'], { T2MD_WASM_THREADS: 'many' }),
      /T2MD_WASM_THREADS must be an integer in 1\.\.8, got 'many'/,
    );
  });

  it('fails with exit 2 and one line when the asked-for backend is missing', () => {
    const r = t2md(['info'], { T2MD_BACKEND: 'webgpu', VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    // webgpu by name is probed in a child first too: Dawn's own lines stay off stderr
    expectOneLine(r, /Backend 'webgpu' is not available: .+; choose wasm or cpu instead \(pass --backend wasm or cpu\)\.$/);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  });

  it('--version prints the version; help marks required options', () => {
    for (const flag of ['--version', '-V']) {
      const r = t2md([flag]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    }
    const help = t2md(['distill', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: t2md distill --teacher <path> --out <dir> \[options\]/);
    expect(help.stdout).toMatch(/--out <dir>[\s\S]*?\(required\)/);
    expect(help.stdout.match(/\(required\)/g)).toHaveLength(2);
  });

  it('exits 2 on an unknown command, flag or backend', () => {
    for (const args of [['nope'], ['info', '--jsn'], ['info', '--backend', 'cuda']]) {
      const r = t2md(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^t2md: /);
    }
  });
});
