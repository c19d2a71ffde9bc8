// A trap of the wasm backend when its memory is full (tfjs and XNNPACK use a failed allocation and trap
// later, e.g. "table index is out of bounds") is said as running out of memory, with what to change;
// any other trap, or an error that is no trap, stays an unexpected failure. The memory is mocked: a
// real run needs 4 GiB (the shapes student's 64-px finetune at batch 8 on wasm is one).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describeError, EXIT_FAILURE } from '../src/errors.js';

const held = vi.hoisted(() => ({ bytes: null as number | null }));
vi.mock('@t2md/core', async (original) => ({ ...(await original<typeof import('@t2md/core')>()), wasmMemoryBytes: () => held.bytes }));
afterEach(() => {
  held.bytes = null;
});

const trap = () => new WebAssembly.RuntimeError('table index is out of bounds');

describe('a wasm trap', () => {
  it('with the memory near its 4 GiB is out of memory, exit 1, one sentence with what to change', () => {
    held.bytes = 2 ** 32;
    expect(describeError(trap())).toEqual({
      code: EXIT_FAILURE,
      line: "t2md: the wasm backend ran out of memory: it held 4.0 GiB of WebAssembly's 4 GiB when it stopped (table index is out of bounds); use a smaller batch or image size, or --backend webgpu.",
    });
  });

  it.each([
    ['half full', 2 ** 31, trap()],
    ['not started', null, trap()],
    ['full, but no trap', 2 ** 32, new RangeError('Invalid array length')],
  ] as const)('%s: stays an unexpected failure', (_, bytes, err) => {
    held.bytes = bytes;
    const { code, line } = describeError(err);
    expect(code).toBe(EXIT_FAILURE);
    expect(line).toBe(`t2md: failed: ${err.message} (run with --debug for the stack).`);
  });
});
