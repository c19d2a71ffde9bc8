import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from './errors.js';
import { gradientsRegistered } from './gradients.js';
import { registerCopyKernels, tunedWebGPUBackend, tuneWebGPUFlags } from './webgpu-backend.js';

/** A backend that `initBackend` can resolve to. */
export type BackendName = 'webgpu' | 'wasm' | 'cpu';

/** What `initBackend` settled on. `software` is true for CPU backends and software WebGPU adapters. */
export interface BackendInfo {
  backend: BackendName;
  adapter?: { vendor: string; architecture: string; description: string };
  software: boolean;
}

export interface InitBackendOptions {
  /** `auto` (default) takes a hardware WebGPU adapter, else wasm, else cpu. `T2MD_BACKEND` overrides `auto`. */
  backend?: 'auto' | BackendName;
  /** Browser only: where the wasm backend's `.wasm` files are served from (a URL prefix ending in `/`). */
  wasmPaths?: string;
}

const NAMES = ['auto', 'webgpu', 'wasm', 'cpu'] as const;
const isNode = typeof process !== 'undefined' && process.versions?.node != null;

interface WebGPUProbe {
  adapter: GPUAdapter;
  info: { vendor: string; architecture: string; description: string };
  software: boolean;
}

let webgpuProbe: Promise<WebGPUProbe | string> | undefined;
let current: BackendInfo | undefined;

function envBackend(): string | undefined {
  const v = isNode ? process.env.T2MD_BACKEND : undefined;
  return v == null || v === '' ? undefined : v;
}

/** Software adapters: SwiftShader (Chromium's Vulkan-on-CPU), Mesa's llvmpipe/lavapipe, WARP. */
function isSoftwareAdapter(adapter: GPUAdapter, info: WebGPUProbe['info']): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.description}`.toLowerCase();
  // `isFallbackAdapter` is the spec's flag; Dawn in Node does not always set it for SwiftShader.
  const fallback = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return fallback || /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|warp/.test(text);
}

/** Node: the `webgpu` package's globals and `navigator.gpu` must exist before the tfjs backend module loads. */
async function installNodeWebGPU(): Promise<GPU | string> {
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    const name = 'webgpu'; // a variable keeps browser bundlers from trying to bundle the native module
    mod = (await import(/* @vite-ignore */ name)) as typeof mod;
  } catch (err) {
    return `the npm package 'webgpu' could not be loaded (${(err as Error).message})`;
  }
  Object.assign(globalThis, mod.globals);
  // ';'-separated: a single Dawn flag may itself hold a comma list (enable-dawn-features=a,b).
  const flags = (process.env.T2MD_DAWN_FLAGS ?? '')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean);
  const gpu = mod.create(flags);
  const g = globalThis as unknown as { navigator?: { gpu?: GPU } };
  if (g.navigator == null) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  } else if (g.navigator.gpu == null) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  }
  return gpu;
}

async function probeWebGPU(): Promise<WebGPUProbe | string> {
  let gpu: GPU | undefined = (globalThis as unknown as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (gpu == null && isNode) {
    const got = await installNodeWebGPU();
    if (typeof got === 'string') return got;
    gpu = got;
  }
  if (gpu == null) return 'this environment has no navigator.gpu';
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    return `requestAdapter failed (${(err as Error).message})`;
  }
  if (adapter == null) {
    return isNode
      ? "no WebGPU adapter was found (without a GPU, set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json after installing Debian's chromium)"
      : 'the browser offered no WebGPU adapter';
  }
  const raw = (adapter as unknown as { info?: GPUAdapterInfo }).info;
  const info = { vendor: raw?.vendor ?? '', architecture: raw?.architecture ?? '', description: raw?.description ?? '' };
  return { adapter, info, software: isSoftwareAdapter(adapter, info) };
}

const webgpuErrors: string[] = [];

/**
 * The WebGPU validation errors reported since the last call (shader compile errors, invalid bind
 * groups, out-of-memory), oldest first, and clears them. Dawn also prints them, but nothing throws:
 * a kernel that fails this way leaves its output buffer as it was.
 */
export function takeWebGPUErrors(): string[] {
  return webgpuErrors.splice(0, webgpuErrors.length);
}

/** Registers tfjs's WebGPU backend on the adapter we probed, asking for the adapter's full limits. */
async function registerWebGPU(probe: WebGPUProbe): Promise<void> {
  const mod = await import('@tensorflow/tfjs-backend-webgpu');
  // The module registers its own factory when it loads; ours reuses the adapter we already chose.
  if (tf.findBackendFactory('webgpu') != null && tf.findBackend('webgpu') == null) tf.removeBackend('webgpu');
  if (tf.findBackendFactory('webgpu') != null) return;
  tf.registerBackend(
    'webgpu',
    async () => {
      const { adapter } = probe;
      const l = adapter.limits;
      const wanted: GPUFeatureName[] = ['timestamp-query', 'subgroups' as GPUFeatureName];
      const device = await adapter.requestDevice({
        requiredFeatures: wanted.filter((f) => adapter.features.has(f)),
        requiredLimits: {
          maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
          maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
          maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
          maxBufferSize: l.maxBufferSize,
          maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
          maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
          maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        },
      });
      // A shader that fails to compile invalidates the whole command buffer it is in, so the kernels
      // beside it silently do nothing too: keep every such error for `takeWebGPUErrors` (tests check it).
      device.addEventListener('uncapturederror', (ev) => {
        if (webgpuErrors.length < 100) webgpuErrors.push(String((ev as GPUUncapturedErrorEvent).error?.message ?? ev));
      });
      tuneWebGPUFlags();
      registerCopyKernels();
      const Backend = tunedWebGPUBackend(mod.WebGPUBackend as unknown as new (d: GPUDevice, i?: unknown) => WebGPUBackend);
      return new Backend(device, probe.adapter.info);
    },
    3,
  );
}

async function useWebGPU(required: boolean): Promise<BackendInfo | string> {
  webgpuProbe ??= probeWebGPU();
  const probe = await webgpuProbe;
  if (typeof probe === 'string') return probe;
  if (!required && probe.software) return `the only WebGPU adapter is software (${probe.info.architecture || probe.info.description})`;
  await registerWebGPU(probe);
  if (!(await tf.setBackend('webgpu'))) return 'tfjs could not start its WebGPU backend on this adapter';
  return { backend: 'webgpu', adapter: { ...probe.info }, software: probe.software };
}

async function useWasm(wasmPaths?: string): Promise<BackendInfo | string> {
  try {
    const mod = await import('@tensorflow/tfjs-backend-wasm');
    if (wasmPaths) mod.setWasmPaths(wasmPaths);
    if (!(await tf.setBackend('wasm'))) return 'the wasm backend failed to start';
  } catch (err) {
    return `the wasm backend failed to start (${(err as Error).message})`;
  }
  return { backend: 'wasm', software: true };
}

async function useCpu(): Promise<BackendInfo | string> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu'))) return 'the cpu backend failed to start';
  // Silences tfjs's one-time "install tfjs-node" banner: cpu is a deliberate choice here.
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  return { backend: 'cpu', software: true };
}

/**
 * Selects and starts a TensorFlow.js backend.
 *
 * `auto` (the default, or `T2MD_BACKEND` when set) prefers a hardware WebGPU adapter, then wasm, then
 * cpu; a software WebGPU adapter such as SwiftShader is passed over. Asking for a backend by name uses
 * it or throws: there is never a silent switch. After this resolves every tfjs-core op has its
 * gradient registered.
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  gradientsRegistered();
  let want: string = opts.backend ?? 'auto';
  if (want === 'auto') want = envBackend() ?? 'auto';
  if (!(NAMES as readonly string[]).includes(want)) {
    const from = opts.backend != null && opts.backend !== 'auto' ? 'backend' : 'T2MD_BACKEND';
    throw new InputError(`${from} must be one of ${NAMES.join(', ')}, got '${want}'.`);
  }
  let result: BackendInfo | string;
  if (want === 'auto') {
    result = await useWebGPU(false);
    if (typeof result === 'string') result = await useWasm(opts.wasmPaths);
    if (typeof result === 'string') result = await useCpu();
  } else if (want === 'webgpu') {
    result = await useWebGPU(true);
  } else if (want === 'wasm') {
    result = await useWasm(opts.wasmPaths);
  } else {
    result = await useCpu();
  }
  if (typeof result === 'string') {
    throw new InputError(
      `Backend '${want}' is not available: ${result}; choose another with --backend or T2MD_BACKEND (webgpu, wasm, cpu).`,
    );
  }
  await tf.ready();
  current = result;
  return { ...result, adapter: result.adapter && { ...result.adapter } };
}

/** The backend `initBackend` last resolved to, or undefined before the first call. */
export function currentBackend(): BackendInfo | undefined {
  return current && { ...current, adapter: current.adapter && { ...current.adapter } };
}

/** Adapter limits and features of the active WebGPU backend (for `t2md info`); undefined elsewhere. */
export function webgpuDetails(): { limits: Record<string, number>; features: string[] } | undefined {
  if (tf.getBackend() !== 'webgpu') return undefined;
  const device = (tf.backend() as unknown as { device: GPUDevice }).device;
  const limits: Record<string, number> = {};
  const src = device.limits as unknown as Record<string, number>;
  for (const key of [
    'maxBufferSize',
    'maxStorageBufferBindingSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBuffersPerShaderStage',
  ]) {
    if (typeof src[key] === 'number') limits[key] = src[key];
  }
  return { limits, features: [...device.features].map(String).sort() };
}
