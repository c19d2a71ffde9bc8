import { onEveryBackend, registerKernelsOnce, type TypedOutput, typedArrayKernel } from '@t2md/core';
import {
  engine,
  fill,
  type GradConfig,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { type SsdArrays, ssdBackwardValues } from './cpu.js';
import { ssdForwardHost } from './host.js';
import { ssdForwardSimd } from './simd-scan.js';
import { dimsOf, SSD_INPUTS, type SsdAttrs } from './types.js';
import { ssdBackwardWebGPU, ssdForwardWebGPU } from './webgpu.js';
import { ssdForwardSegmented } from './webgpu-segmented.js';

export const SSD_SCAN = 'T2mdSsdScan';
export const SSD_SCAN_GRAD = 'T2mdSsdScanGrad';

type Arr = Record<string, { shape: number[]; values: Float32Array } | undefined>;

function arrays(i: Arr): SsdArrays {
  const v = (k: string) => i[k]!.values;
  return {
    x: v('x'),
    dt: v('dt'),
    A: v('A'),
    B: v('B'),
    C: v('C'),
    D: v('D'),
    z: v('z'),
    dtBias: v('dtBias'),
    initialStates: v('initialStates'),
  };
}

// forward: on wasm the recurrence in a SIMD module of ours (simd-scan.ts), else the chunked matrix
// form on the backend's own GEMMs (host.ts); the plain recurrence of cpu.ts (ssdForwardValues) is
// the reference of both. The backward is still the recurrence.
const jsForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const [b, i, a] = [backend as KernelBackend, inputs as Record<string, TensorInfo>, attrs as unknown as SsdAttrs];
  return ssdForwardSimd(b, i, a) ?? ssdForwardHost(b, i, a);
};

const jsBackward = typedArrayKernel<SsdAttrs>([...SSD_INPUTS, 'dy', 'dFinal'], (i, attrs) => {
  const d = dimsOf(i.x!.shape, i.B!.shape);
  const g = ssdBackwardValues(arrays(i), i.dy!.values, i.dFinal!.values, d, attrs);
  return SSD_INPUTS.map((k): TypedOutput => ({ shape: i[k]!.shape, values: g[k] }));
});

// WebGPU: the forward variant the attrs name (a benchmark knob; both feed the same backward)
const webgpuForward: KernelFunc = (args) =>
  (args.attrs as unknown as SsdAttrs).variant === 'segmented' ? ssdForwardSegmented(args) : ssdForwardWebGPU(args);

export const ssdKernels: KernelConfig[] = [
  ...onEveryBackend(SSD_SCAN, jsForward, webgpuForward),
  ...onEveryBackend(SSD_SCAN_GRAD, jsBackward, ssdBackwardWebGPU),
];

/**
 * One backward kernel yields every input's gradient; it runs eagerly inside `tf.grads`' backward
 * tidy, so the gradients nobody asks for are freed with it. dys is one tensor when the forward ran
 * without its finalStates output (attrs.returnFinal false), else [dy, dFinal].
 */
export const ssdScanGrad: GradConfig = {
  kernelName: SSD_SCAN,
  inputsToSave: [...SSD_INPUTS],
  gradFunc: (dys, saved, attrs) => {
    const [dyIn, dFinalIn] = Array.isArray(dys) ? (dys as (Tensor | null)[]) : [dys, null];
    const named = Object.fromEntries(SSD_INPUTS.map((k, i) => [k, saved[i]]));
    const x = named.x;
    const [b, , h, p] = x.shape as number[];
    const n = named.B.shape[3] as number;
    // fill runs on the backend (a GPU program on webgpu); zeros would build the array on the CPU and
    // upload it on every backward (2.4 MB a sequence at 36 heads × 64 × 256)
    const dy = dyIn ?? fill(x.shape, 0);
    const dFinal = dFinalIn ?? fill([b, h, p, n], 0);
    const grads = engine().runKernel(SSD_SCAN_GRAD, { ...named, dy, dFinal }, attrs as unknown as NamedAttrMap) as Tensor[];
    return Object.fromEntries(SSD_INPUTS.map((k, i) => [k, () => grads[i]]));
  },
};

/** Registers the SSD kernels (cpu, wasm, webgpu) and their gradient; idempotent. */
export function registerSsdKernels(): void {
  registerKernelsOnce(ssdKernels, [ssdScanGrad]);
}
