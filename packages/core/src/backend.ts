import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import * as tf from '@tensorflow/tfjs-core';
import { type AdapterList, type AdapterSummary, adapterName, listAdaptersInChild, listAdaptersOf, summarize } from './adapters.js';
import { backendStarted } from './backend-started.js';
import { watchDeviceBytes } from './device-memory.js';
import { InputError, isInputError } from './errors.js';
import { gradientsRegistered } from './gradients.js';
import { registerReduceKernels } from './ops/reduce-webgpu.js';
import { describeWasm, prepareWasm } from './wasm-threads.js';
import { applyDeferredFreeEnv, applyPoolEnv, registerCopyKernels, tunedWebGPUBackend, tuneWebGPUFlags } from './webgpu-backend.js';

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
  /**
   * Node only: flags for Dawn's `create()` when this call installs the `webgpu` package (the first
   * WebGPU probe of the process, with no `navigator.gpu` yet), e.g.
   * `['disable-dawn-features=timestamp_quantization']` for unquantised GPU timestamps in profiles, or
   * `['enable-dawn-features=allow_unsafe_apis,disable_robustness']`. `dawnFlagsInUse()` says which took effect.
   */
  dawnFlags?: readonly string[];
}

const NAMES = ['auto', 'webgpu', 'wasm', 'cpu'] as const;
const isNode = typeof process !== 'undefined' && process.versions?.node != null;

interface WebGPUProbe {
  adapter: GPUAdapter;
  info: { vendor: string; architecture: string; description: string };
  software: boolean;
}

/** Why `initBackend` chose as it did: what was asked for, every WebGPU adapter seen, and one sentence. */
export interface BackendReport {
  /** What was asked for (`auto` unless named), and where that came from. */
  requested: 'auto' | BackendName;
  from: 'option' | 'T2MD_BACKEND' | 'default';
  backend: BackendName;
  /** Every WebGPU adapter found; empty when none was, or when WebGPU was not looked at (wasm or cpu by name). */
  adapters: AdapterSummary[];
  /** One sentence: why this backend (and why not WebGPU, for `auto`). */
  reason: string;
  /** What Dawn and the Vulkan drivers printed while `auto` probed (kept off stderr). */
  log: string[];
}

let webgpuProbe: Promise<WebGPUProbe | string> | undefined;
let childList: Promise<AdapterList> | undefined;
let current: BackendInfo | undefined;
let report: BackendReport | undefined;
/** The flags `installNodeWebGPU` created Dawn with; undefined when navigator.gpu came from elsewhere. */
let installedFlags: readonly string[] | undefined;

function envBackend(): string | undefined {
  const v = isNode ? process.env.T2MD_BACKEND : undefined;
  return v == null || v === '' ? undefined : v;
}

/** Node: the `webgpu` package's globals and `navigator.gpu` must exist before the tfjs backend module loads. */
async function installNodeWebGPU(flags: readonly string[]): Promise<GPU | string> {
  let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    const name = 'webgpu'; // a variable keeps browser bundlers from trying to bundle the native module
    mod = (await import(/* @vite-ignore */ name)) as typeof mod;
  } catch (err) {
    return `the npm package 'webgpu' could not be loaded (${(err as Error).message})`;
  }
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create([...flags]);
  installedFlags = [...flags];
  const g = globalThis as unknown as { navigator?: { gpu?: GPU } };
  if (g.navigator == null) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  } else if (g.navigator.gpu == null) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  }
  return gpu;
}

const NO_ADAPTER_NODE =
  "no WebGPU adapter was found (without a GPU, set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json after installing Debian's chromium)";

async function probeWebGPU(flags: readonly string[]): Promise<WebGPUProbe | string> {
  let gpu: GPU | undefined = (globalThis as unknown as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (gpu == null && isNode) {
    const got = await installNodeWebGPU(flags);
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
  if (adapter == null) return isNode ? NO_ADAPTER_NODE : 'the browser offered no WebGPU adapter';
  const { software, ...info } = summarize(adapter);
  return { adapter, info, software };
}

/**
 * Node, before Dawn is loaded: ask a child process (see adapters.ts) which adapters exist at all, so a
 * machine without a usable one never loads Dawn here (nor hears from its drivers).
 * Returns undefined when this process should probe itself.
 */
async function preProbe(flags: readonly string[]): Promise<AdapterList | undefined> {
  if (!isNode || (globalThis as unknown as { navigator?: { gpu?: GPU } }).navigator?.gpu != null) return undefined;
  childList ??= listAdaptersInChild(60_000, flags);
  return childList;
}

const webgpuErrors: string[] = [];
/** Errors reported beyond the 100 kept (an out-of-memory run reports thousands). */
let droppedErrors = 0;
let quiet = false;
let lost: string | null = null;

/**
 * The WebGPU errors reported since the last call (shader compile errors, invalid bind groups,
 * out-of-memory, the device's loss), oldest first, and clears them; the first 100 are kept, and a last
 * entry says how many more there were. Nothing throws for them: a kernel that fails this way leaves its
 * output buffer as it was, and so does every kernel of its command buffer.
 */
export function takeWebGPUErrors(): string[] {
  const out = webgpuErrors.splice(0, webgpuErrors.length);
  if (droppedErrors > 0) out.push(`(${droppedErrors} more WebGPU error(s) not kept)`);
  droppedErrors = 0;
  return out;
}

/**
 * While on, WebGPU's uncaptured errors are kept for `takeWebGPUErrors` only, and Dawn in Node does not
 * print each one: it prints them on stdout (inside a `--json` document) and, for a run out of memory,
 * thousands of them, which hide the one line that says what failed. Turn it on only where the caller
 * reports `takeWebGPUErrors()` itself (the benchmarks do, per point); off (the default), errors are
 * printed as the platform prints them and kept as well.
 */
export function quietWebGPUErrors(on: boolean): void {
  quiet = on;
}

/** Why the WebGPU device was lost, once it was (every later kernel does nothing); null while it works. */
export function webgpuDeviceLost(): string | null {
  return lost;
}

function keepError(message: string): void {
  if (webgpuErrors.length < 100) webgpuErrors.push(message);
  else droppedErrors += 1;
}

/** Registers tfjs's WebGPU backend on the adapter we probed, asking for the adapter's full limits. */
async function registerWebGPU(probe: WebGPUProbe): Promise<void> {
  const mod = await import('@tensorflow/tfjs-backend-webgpu');
  // The module registers its own factory when it loads; ours reuses the adapter we already chose.
  if (tf.findBackendFactory('webgpu') != null && !backendStarted('webgpu')) tf.removeBackend('webgpu');
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
        keepError(String((ev as GPUUncapturedErrorEvent).error?.message ?? ev));
        if (quiet) ev.preventDefault(); // Dawn (Node) and browsers print an error whose event was not prevented
      });
      void device.lost.then((info) => {
        if (info.reason === 'destroyed') return; // tfjs's own dispose
        lost = `the WebGPU device was lost (${info.reason ?? 'unknown'}${info.message ? `: ${info.message}` : ''})`;
        keepError(lost);
      });
      tuneWebGPUFlags();
      registerCopyKernels();
      registerReduceKernels();
      const Backend = tunedWebGPUBackend(mod.WebGPUBackend as unknown as new (d: GPUDevice, i?: unknown) => WebGPUBackend);
      return new Backend(device, probe.adapter.info);
    },
    3,
  );
}

/** Adapters and native log lines seen by the current `initBackend` call, for its report. */
let seen: AdapterList = { adapters: [], log: [] };

async function useWebGPU(required: boolean, flags: readonly string[]): Promise<BackendInfo | string> {
  applyDeferredFreeEnv();
  applyPoolEnv();
  // Asked for by name, WebGPU is probed in a child first too: when the child finds no adapter at all,
  // Dawn's and the drivers' lines stay off stderr and the caller gets one sentence. A software adapter
  // is loaded here; so is Dawn when the child itself failed (then only this process can tell).
  const pre = await preProbe(flags);
  if (pre != null) {
    seen = pre;
    if (pre.adapters.length === 0 && (pre.problem == null || !required)) return pre.problem ?? NO_ADAPTER_NODE;
    if (!required && !pre.adapters.some((a) => !a.software)) {
      return `the only WebGPU adapter is software (${adapterName(pre.adapters[0]!)})`;
    }
  }
  webgpuProbe ??= probeWebGPU(flags);
  const probe = await webgpuProbe;
  if (typeof probe === 'string') return probe;
  if (seen.adapters.length === 0) {
    const gpu = (globalThis as unknown as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    seen = gpu ? await listAdaptersOf(gpu) : { adapters: [{ ...probe.info, software: probe.software }], log: [] };
  }
  if (!required && probe.software) return `the only WebGPU adapter is software (${adapterName(probe.info)})`;
  await registerWebGPU(probe);
  if (!(await tf.setBackend('webgpu'))) return 'tfjs could not start its WebGPU backend on this adapter';
  watchDeviceBytes();
  return { backend: 'webgpu', adapter: { ...probe.info }, software: probe.software };
}

/**
 * The wasm backend's Emscripten glue adds `uncaughtException` and `unhandledRejection` handlers in
 * Node that rethrow, which turns any later uncaught error of the caller into exit code 7 with a trace
 * that starts inside tf-backend-wasm. tfjs means to remove them on dispose but never does. Removing
 * the ones added while wasm started gives back Node's own handling (exit 1, the caller's trace).
 */
async function withoutEmscriptenHandlers<T>(start: () => Promise<T>): Promise<T> {
  if (!isNode) return start();
  // Typed loosely: Node's overloads of listeners/off differ per event name.
  const proc = process as unknown as { listeners(e: string): unknown[]; off(e: string, l: unknown): void };
  const events = ['uncaughtException', 'unhandledRejection'];
  const before = events.map((e) => proc.listeners(e));
  try {
    return await start();
  } finally {
    events.forEach((e, i) => {
      for (const l of proc.listeners(e)) if (!before[i].includes(l)) proc.off(e, l);
    });
  }
}

async function useWasm(wasmPaths?: string): Promise<BackendInfo | string> {
  try {
    const mod = await import('@tensorflow/tfjs-backend-wasm');
    if (wasmPaths && !backendStarted('wasm')) mod.setWasmPaths(wasmPaths);
    await prepareWasm(mod);
    if (!(await withoutEmscriptenHandlers(() => tf.setBackend('wasm')))) return 'the wasm backend failed to start';
    await describeWasm(mod);
  } catch (err) {
    if (isInputError(err)) throw err;
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
 * gradient registered. `backendReport()` then says why this backend was chosen.
 *
 * In Node, `auto` and `webgpu` first list the adapters from a short-lived child process, so that the
 * messages Dawn and the Vulkan drivers print while they look for GPUs stay off the caller's stderr (they
 * are in the report's `log`); only when a usable adapter exists (hardware for `auto`, any for `webgpu`)
 * is Dawn loaded into this process. A backend that is not available is an InputError that offers the
 * other backends, never the one that failed.
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  gradientsRegistered();
  let want: string = opts.backend ?? 'auto';
  const env = want === 'auto' ? envBackend() : undefined;
  if (env != null) want = env;
  const from: BackendReport['from'] = env != null ? 'T2MD_BACKEND' : opts.backend != null && opts.backend !== 'auto' ? 'option' : 'default';
  if (!(NAMES as readonly string[]).includes(want)) {
    throw new InputError(`${from === 'T2MD_BACKEND' ? 'T2MD_BACKEND' : 'backend'} must be one of ${NAMES.join(', ')}, got '${want}'.`);
  }
  seen = { adapters: [], log: [] };
  let result: BackendInfo | string;
  let reason: string;
  if (want === 'auto') {
    result = await useWebGPU(false, opts.dawnFlags ?? []);
    if (typeof result === 'string') {
      const noGpu = result;
      result = await useWasm(opts.wasmPaths);
      if (typeof result === 'string') {
        const noWasm = result;
        result = await useCpu();
        reason = `auto took cpu: WebGPU was passed over (${noGpu}) and ${noWasm}.`;
      } else {
        reason = `auto took wasm: ${noGpu}${/software/.test(noGpu) ? ', slower than wasm' : ''}.`;
      }
    } else {
      reason = `auto took the hardware WebGPU adapter ${adapterName(result.adapter ?? { vendor: '', architecture: '', description: '' })}.`;
    }
  } else {
    result =
      want === 'webgpu' ? await useWebGPU(true, opts.dawnFlags ?? []) : want === 'wasm' ? await useWasm(opts.wasmPaths) : await useCpu();
    reason = `${want} was asked for${from === 'T2MD_BACKEND' ? ' by T2MD_BACKEND' : ''}.`;
  }
  if (typeof result === 'string') {
    const others = NAMES.filter((n) => n !== 'auto' && n !== want);
    throw new InputError(`Backend '${want}' is not available: ${result}; choose ${others.join(' or ')} instead.`);
  }
  await tf.ready();
  current = result;
  report = { requested: want as BackendReport['requested'], from, backend: result.backend, adapters: seen.adapters, reason, log: seen.log };
  return { ...result, adapter: result.adapter && { ...result.adapter } };
}

/**
 * The Dawn flags `initBackend` created the `webgpu` package's GPU with (Node), or undefined when it did
 * not create it (the browser, or an entry point that set `navigator.gpu` itself).
 */
export function dawnFlagsInUse(): readonly string[] | undefined {
  return installedFlags && [...installedFlags];
}

/** The backend `initBackend` last resolved to, or undefined before the first call. */
export function currentBackend(): BackendInfo | undefined {
  return current && { ...current, adapter: current.adapter && { ...current.adapter } };
}

/** Why the last `initBackend` chose its backend, and every WebGPU adapter it saw; undefined before the first call. */
export function backendReport(): BackendReport | undefined {
  return report && { ...report, adapters: report.adapters.map((a) => ({ ...a })), log: [...report.log] };
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
