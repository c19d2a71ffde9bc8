/**
 * Device memory of `t2md bench scaling` and `t2md bench train` at full size on any machine with a
 * WebGPU adapter (SwiftShader will do), in seconds: the benches run on a dry device (@t2md/core/testing's
 * `dryRunWebGPU`: tfjs's allocations counted exactly, nothing computed, an H100's binding limits), and
 * each point prints its device peak and, at that moment, what the allocated bytes were: live tensors,
 * disposed tensors waiting for a submit, and tfjs's pool of free buffers. Timings are meaningless here.
 *
 *   npm run build   # the benches import the packages' dist
 *   npx esbuild bench/memory-dry-run.ts --bundle --platform=node --format=esm --outfile=.gpu/memory-dry-run.mjs \
 *     --external:webgpu --external:'@tensorflow/*'
 *   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json node .gpu/memory-dry-run.mjs scaling --sizes 16384,32400 --batches 1,2
 *   VK_ICD_FILENAMES=... node .gpu/memory-dry-run.mjs train --batches 128,512,1024
 *   VK_ICD_FILENAMES=... node .gpu/memory-dry-run.mjs train --batches 1024 --step distill --recompute distill
 *
 * `T2MD_DEFERRED_FREE_MB` sets the early submit as for the real benches (`Infinity`: off). Checked
 * against real runs: within 1 MiB of SwiftShader's device peaks at the quick sizes, and the scaling
 * bench's live-tensor column (teacherMB, studentMB) equal to the H100's at 1fc7c46 at every size.
 */
import { initBackend } from '@t2md/core';
import { describeInfo, dryRunWebGPU } from '@t2md/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { runScalingBench } from '../packages/cli/src/bench/scaling.js';
import { parseTrainSteps, runTrainBench } from '../packages/cli/src/bench/train.js';

const [which, ...rest] = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const list = (name: string, dflt: string) => (arg(name) ?? dflt).split(',').map(Number);
if (which !== 'scaling' && which !== 'train') {
  console.error(
    'usage: memory-dry-run.mjs scaling [--sizes 1024,32400] [--batches 1,2] | train [--batches 128,1024] [--step distill] [--recompute distill]',
  );
  process.exit(2);
}
const info = await initBackend({ backend: 'webgpu' });
const stats = dryRunWebGPU();
const MiB = 2 ** 20;
const mib = (b: number) => (b / MiB).toFixed(0);

// Beside each point's peak: the most bytes in use at once (tensors and uniforms, live or waiting for a
// submit) and the most in live tensors. The pool only grows within a point, so peak − in use is at least
// what pooled buffers of other sizes cost.
interface Internals {
  bufferManager: {
    acquireBuffer(...a: unknown[]): GPUBuffer;
    numBytesAllocated: number;
    numBytesUsed: number;
  };
  tensorDataPendingDisposal: object[];
  tensorMap: { get(id: object): { resource?: GPUBuffer } | undefined };
}
const be = tf.backend() as unknown as Internals;
const bm = be.bufferManager;
let most = { used: 0, live: 0 };
const acquire = bm.acquireBuffer;
bm.acquireBuffer = function (...a: unknown[]) {
  const buffer = acquire.apply(this, a);
  if (bm.numBytesUsed > most.live) {
    let waiting = 0;
    for (const id of be.tensorDataPendingDisposal) waiting += be.tensorMap.get(id)?.resource?.size ?? 0;
    most = { used: Math.max(most.used, bm.numBytesUsed), live: Math.max(most.live, bm.numBytesUsed - waiting) };
  }
  return buffer;
};
const mostly = () => {
  const s = `in use at most ${mib(most.used)} MiB, live tensors at most ${mib(most.live)} MiB (resident weights included)`;
  most = { used: 0, live: 0 };
  return s;
};

console.log(`dry run on ${describeInfo(info)}: tfjs's allocations counted, nothing computed`);
const t0 = performance.now();
if (which === 'scaling') {
  const rows = await runScalingBench({
    quick: false,
    sizes: list('--sizes', '1024,4096,16384,32400'),
    batches: list('--batches', '1,2'),
    log: (line) => {
      if (/^ {2}(teacher|student) /.test(line)) console.log(`  ${line.trim().split(' ')[0]}: ${mostly()}`);
      else if (/^scaling: \d+ tokens/.test(line)) {
        console.log(line);
        most = { used: 0, live: 0 };
      }
    },
  });
  console.log('tokens  batch  teacher device MiB  student device MiB  teacher live MiB  student live MiB');
  for (const r of rows) {
    const cells = [r.tokens, r.batch, r.teacherDeviceMB, r.studentDeviceMB, r.teacherMB, r.studentMB];
    console.log(`${cells.map((c, i) => String(c ?? r.error ?? '—').padStart(i < 2 ? 6 : 18)).join('')}`);
  }
} else {
  const step = arg('--step');
  const recompute = arg('--recompute');
  const rows = await runTrainBench({
    quick: false,
    batches: list('--batches', '128,512,1024'),
    steps: 1,
    profile: false,
    ...(step === 'teacher' || step === 'distill' ? { which: [step] } : {}),
    ...(recompute != null ? { recompute: parseTrainSteps('--recompute', recompute) } : {}),
    log: (line) => console.log(`${line.split(':')[0]}: ${mostly()}`),
  });
  console.log('step     batch  device peak MiB');
  for (const r of rows) {
    console.log(
      `${r.step.padEnd(8)}${String(r.batch).padStart(6)}${String(r.devicePeakMB ?? r.error).padStart(17)}${r.recompute ? '  (recompute)' : ''}`,
    );
  }
}
console.log(
  `${((performance.now() - t0) / 1000).toFixed(1)} s; the dry device saw ${stats.dispatches} dispatches, ${stats.submits} submits`,
);
process.exit(0);
