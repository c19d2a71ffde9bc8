/**
 * Finding WebGPU adapters without letting the native stack talk over the caller.
 *
 * In Node, creating Dawn's instance enumerates every Vulkan driver, and the drivers and Dawn write to
 * the process's stderr directly (Mesa: "XDG_RUNTIME_DIR is invalid or not set"; Dawn: "Vulkan
 * shaderUniform*ArrayDynamicIndexing required" for lavapipe, which it rejects). Nothing in JavaScript
 * can redirect that, so `auto` asks a short-lived child process which adapters exist and keeps what
 * it printed as a log. Only when that child finds a hardware adapter does this process load Dawn.
 */

/** One WebGPU adapter as found. `software` marks SwiftShader, llvmpipe/lavapipe, WARP and fallback adapters. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  software: boolean;
}

/** Every adapter a probe found (deduplicated), what the native stack printed meanwhile, and why none when none. */
export interface AdapterList {
  adapters: AdapterSummary[];
  /** Lines Dawn, the Vulkan loader or the drivers wrote to stderr while probing (Node child probe only). */
  log: string[];
  /** Why no adapter could be listed (no navigator.gpu, the binding failed to load, the probe crashed). */
  problem?: string;
}

const isNode = typeof process !== 'undefined' && process.versions?.node != null;

/** The adapter requests a probe makes: the two power preferences and the spec's fallback adapter. */
const REQUESTS: GPURequestAdapterOptions[] = [
  { powerPreference: 'high-performance' },
  { powerPreference: 'low-power' },
  { forceFallbackAdapter: true },
];

/** Software adapters: SwiftShader (Chromium's Vulkan-on-CPU), Mesa's llvmpipe/lavapipe, WARP. */
export function isSoftwareAdapter(info: Omit<AdapterSummary, 'software'>, isFallbackAdapter: boolean): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.description}`.toLowerCase();
  // `isFallbackAdapter` is the spec's flag; Dawn in Node does not always set it for SwiftShader.
  return isFallbackAdapter || /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|warp/.test(text);
}

/** The summary of one adapter (GPUAdapter.info; `isFallbackAdapter` where the implementation has it). */
export function summarize(adapter: GPUAdapter): AdapterSummary {
  const raw = (adapter as unknown as { info?: GPUAdapterInfo }).info;
  const info = { vendor: raw?.vendor ?? '', architecture: raw?.architecture ?? '', description: raw?.description ?? '' };
  const fallback = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return { ...info, software: isSoftwareAdapter(info, fallback) };
}

/** `vendor / architecture / description`, leaving out empty parts. */
export function adapterName(a: Omit<AdapterSummary, 'software'>): string {
  return [a.vendor, a.architecture, a.description].filter(Boolean).join(' / ') || 'an unnamed adapter';
}

function dedupe(list: AdapterSummary[]): AdapterSummary[] {
  const seen = new Map<string, AdapterSummary>();
  for (const a of list) seen.set(`${a.vendor}\0${a.architecture}\0${a.description}`, a);
  return [...seen.values()];
}

/** Lists the adapters of a `navigator.gpu` in this process (the browser, or Node once Dawn is loaded). */
export async function listAdaptersOf(gpu: GPU): Promise<AdapterList> {
  const found: AdapterSummary[] = [];
  let problem: string | undefined;
  for (const opts of REQUESTS) {
    try {
      const adapter = await gpu.requestAdapter(opts);
      if (adapter != null) found.push(summarize(adapter));
    } catch (err) {
      problem ??= `requestAdapter failed (${(err as Error).message})`;
    }
  }
  return { adapters: dedupe(found), log: [], ...(found.length === 0 && problem ? { problem } : {}) };
}

/**
 * The child's program: load Dawn, make the same requests, print the adapters as JSON on stdout. It
 * exits explicitly, since Dawn's instance keeps an event loop alive.
 */
function childSource(webgpuUrl: string, flags: readonly string[]): string {
  return `
const { create } = await import(${JSON.stringify(webgpuUrl)});
const gpu = create(${JSON.stringify(flags)});
const out = [];
for (const opts of ${JSON.stringify(REQUESTS)}) {
  try {
    const a = await gpu.requestAdapter(opts);
    if (a) out.push({ vendor: a.info?.vendor ?? '', architecture: a.info?.architecture ?? '', description: a.info?.description ?? '', fallback: a.isFallbackAdapter === true });
  } catch {}
}
process.stdout.write(JSON.stringify(out));
process.exit(0);`;
}

/**
 * Node: lists WebGPU adapters from a child process, so what Dawn and the drivers print lands in `log`
 * instead of the caller's stderr. Resolves (never rejects); a crash or timeout of the child is a `problem`.
 */
export async function listAdaptersInChild(timeoutMs = 60_000, flags: readonly string[] = []): Promise<AdapterList> {
  let webgpuUrl: string;
  let execFile: typeof import('node:child_process').execFile;
  try {
    // Variables keep browser bundlers from trying to bundle Node's modules or the native binding.
    const cp = 'node:child_process';
    const mod = 'node:module';
    const url = 'node:url';
    execFile = ((await import(/* @vite-ignore */ cp)) as typeof import('node:child_process')).execFile;
    const { createRequire } = (await import(/* @vite-ignore */ mod)) as typeof import('node:module');
    const { pathToFileURL } = (await import(/* @vite-ignore */ url)) as typeof import('node:url');
    webgpuUrl = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch (err) {
    return { adapters: [], log: [], problem: `the npm package 'webgpu' could not be found (${(err as Error).message})` };
  }
  return new Promise<AdapterList>((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', childSource(webgpuUrl, flags)],
      { timeout: timeoutMs, maxBuffer: 1 << 20, windowsHide: true },
      (err, stdout, stderr) => {
        const log = String(stderr)
          .split('\n')
          .map((l) => l.trimEnd())
          .filter((l) => l.trim() !== '');
        let raw: (Omit<AdapterSummary, 'software'> & { fallback: boolean })[] | undefined;
        try {
          raw = JSON.parse(String(stdout));
        } catch {
          raw = undefined;
        }
        if (err != null || !Array.isArray(raw)) {
          const how = (err as { killed?: boolean } | null)?.killed
            ? `timed out after ${timeoutMs / 1000} s`
            : `failed (${err?.message.split('\n')[0] ?? 'no output'})`;
          resolve({ adapters: [], log, problem: `probing WebGPU in a child process ${how}` });
          return;
        }
        const adapters = raw.map(({ fallback, ...info }) => ({ ...info, software: isSoftwareAdapter(info, fallback) }));
        resolve({ adapters: dedupe(adapters), log });
      },
    );
  });
}

/** Where to look: this process's `navigator.gpu` when there is one, else (Node) a child process. */
export async function listAdapters(): Promise<AdapterList> {
  const gpu = (globalThis as unknown as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (gpu != null) return listAdaptersOf(gpu);
  if (isNode) return listAdaptersInChild();
  return { adapters: [], log: [], problem: 'this environment has no navigator.gpu' };
}
