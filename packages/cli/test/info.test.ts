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

  it('auto picks wasm over a software adapter', () => {
    const r = t2md(['info', '--json'], { T2MD_BACKEND: undefined, VK_ICD_FILENAMES: SWIFTSHADER });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ backend: 'wasm', software: true });
  });

  it('fails with exit 2 and one line when the asked-for backend is missing', () => {
    const r = t2md(['info'], { T2MD_BACKEND: 'webgpu', VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    // Dawn's own native warnings may precede the line
    expectOneLine(r, /Backend 'webgpu' is not available/);
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
