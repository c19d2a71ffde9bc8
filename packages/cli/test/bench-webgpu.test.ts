import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { timingsOf } from '../src/bench/results.js';
import { t2md } from './cli.js';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const FAULT = resolve(__dirname, 'fixtures', 'oversized-buffer.mjs');
const dir = mkdtempSync(join(tmpdir(), 't2md-bench-webgpu-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Row = Record<string, unknown>;

describe('t2md bench on WebGPU (SwiftShader)', () => {
  it('fails a point during which WebGPU reported an error: its row holds the error and no timing, the run exits 1', (ctx) => {
    const out = join(dir, 'attention.json');
    // 4 heads × 96 tokens × 32 floats: q, k, v and dy of the first point are 49,152-byte buffers; the
    // fixture asks for a buffer over maxBufferSize beside the first of them (inside that point), and
    // nothing throws: only the bench's check of WebGPU's errors can tell
    const r = t2md(['bench', 'attention', '--backend', 'webgpu', '--sizes', '96,64', '--json', '--out', out, '--allow-dirty'], {
      VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${FAULT}`.trim(),
      T2MD_FAULT_BUFFER_BYTES: String(4 * 96 * 32 * 4),
    });
    if (/Backend 'webgpu' is not available/.test(r.stderr) && process.env.T2MD_REQUIRE_WEBGPU !== '1') {
      return ctx.skip('no WebGPU adapter here');
    }
    expect(r.stderr).toMatch(/^fault: asking for \d+ bytes beside a buffer of 49152$/m); // the fault did fire
    expect(r.code, r.stderr).toBe(1);
    // stdout is still one JSON document: Dawn's own print of the error (on stdout) was held back
    const doc = JSON.parse(r.stdout);
    const [bad, good] = doc.attention as Row[];
    expect(bad).toMatchObject({ tokens: 96, fwdMs: null, fwdBwdMs: null, naiveFwdMs: null, fwdRuns: [] });
    expect(bad!.error).toMatch(/^WebGPU reported 1 error\(s\): Buffer size \(\d+\) exceeds the max buffer size limit/);
    expect(timingsOf(bad!)).toEqual([]);
    // the next point is measured as usual, with its device-true peak (inputs, outputs, tfjs's pool)
    expect(good).toMatchObject({ tokens: 64 });
    expect(good!.error).toBeUndefined();
    expect(good!.fwdMs as number).toBeGreaterThan(0);
    expect(good!.devicePeakMB as number).toBeGreaterThan(0);
    // the early submit's limit moves device peaks, so every WebGPU row records it (the default: 1 GiB)
    expect((good!.run as Row).settings).toMatchObject({ deferredFreeMB: 1024 });
    // one sentence at the end of stderr says which point failed and with what
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('t2md:'))).toHaveLength(1);
    expect(lines[lines.length - 1]).toMatch(
      /^t2md: bench attention: 1 of 2 point\(s\) failed, the first \(batch 1, heads 4, tokens 96, headDim 32\) with: WebGPU reported 1 error\(s\): Buffer size .*; failed rows hold the error and no timing \(.*attention\.json\)\.$/,
    );
    expect(r.stderr).not.toMatch(/at .*\.(m?js|ts):\d+/); // no stack
  });
});
