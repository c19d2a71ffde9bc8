// Everything the playground runs in the browser. Loaded only by dynamic import from onMounted, so the
// server-side render of the site never touches TensorFlow.js. Uses the packages' public exports only
// (never @t2md/distill, which reads files through node:fs).
import { type BackendInfo, backendReport, initBackend, isInputError, releaseFreeBuffers, wasmBuild } from '@t2md/core';
import { attention, type DiT, loadTrainedModel, type ModelPrediction } from '@t2md/dit';
import type { SamplerName } from '@t2md/sampler';
import {
  type CaptionEncoder,
  createCaptionEncoder,
  FALLBACK_STEPS,
  generate,
  parseCaption,
  placeholderNotice,
  type ShippedSampling,
  sha256Hex,
  shippedSampling,
} from '@t2md/shapes';
import { ssdScan } from '@t2md/ssm';
import * as tf from '@tensorflow/tfjs-core';

export type BackendChoice = 'auto' | 'webgpu' | 'wasm' | 'cpu';
export type ModelName = 'teacher' | 'student';

/** The backend in use: a short label for the status line, and why it was chosen for the line below it. */
export interface BackendState {
  info: BackendInfo;
  /** e.g. `webgpu on nvidia ampere`, `webgpu on google swiftshader (software)`, `wasm`. */
  label: string;
  /** Why this backend (core's backendReport), and what to do to get WebGPU when auto passed it over. */
  note: string;
}

/** A model file as the shapes world ships it: the DiT under `model.`, the caption encoder under `text_encoder.`. */
export interface LoadedModel {
  name: ModelName;
  model: DiT;
  encoder: CaptionEncoder;
  /** What the model predicts (the file's `t2md.prediction`), passed to the sampler. */
  prediction: ModelPrediction;
  /** The file's metadata (`t2md.preset`, `t2md.train`, …). */
  metadata: Record<string, string>;
  dispose(): void;
}

function shortLabel(info: BackendInfo): string {
  const a = info.adapter;
  if (a == null) return info.backend;
  const name = [a.vendor, a.architecture || a.description].filter(Boolean).join(' ') || 'an unnamed adapter';
  return `${info.backend} on ${name}${info.software ? ' (software)' : ''}`;
}

/**
 * Starts `choice` (auto: hardware WebGPU, else wasm, else cpu). The wasm binaries are served from
 * `wasmPaths` (the site's base + 'wasm/').
 */
export async function startBackend(choice: BackendChoice, wasmPaths: string): Promise<BackendState> {
  const info = await initBackend({ backend: choice, wasmPaths });
  const report = backendReport();
  let note = report?.reason ?? '';
  if (choice === 'auto' && info.backend !== 'webgpu' && report?.adapters.some((a) => a.software)) {
    note += ' Choose webgpu under Backend to use it anyway.';
  }
  // The site is static: its host sends no COOP/COEP headers, so the page is not cross-origin isolated
  // and wasm runs its single-threaded build; say so, with the reason, rather than leave it unexplained.
  const wasm = info.backend === 'wasm' ? wasmBuild() : undefined;
  if (wasm) note += ` wasm runs its ${wasm.build} build on ${wasm.threads} thread${wasm.threads === 1 ? '' : 's'}: ${wasm.reason}.`;
  active = { info, label: shortLabel(info), note };
  return active;
}

let active: BackendState | undefined;

/** The backend the page started last (the playground's), or a fresh `auto` one when none was started. */
export async function pageBackend(wasmPaths: string): Promise<BackendState> {
  return active ?? startBackend('auto', wasmPaths);
}

/** Reads a shapes-world model file (bytes of `teacher.safetensors` / `student.safetensors`) with @t2md/dit's reader. */
export function loadModel(name: ModelName, bytes: Uint8Array): LoadedModel {
  const m = loadTrainedModel(bytes, createCaptionEncoder, { where: `${name}.safetensors` });
  return { name, model: m.model, encoder: m.encoder, prediction: m.prediction, metadata: m.metadata, dispose: m.dispose };
}

/**
 * The measured step count of a shipped model file (the step table of @t2md/shapes, checked against the
 * file's size and sha256). Without Web Crypto (a page served over plain http from another host) the file
 * cannot be checked: the default steps, and a note that says why.
 */
export async function measuredSteps(name: ModelName, bytes: Uint8Array): Promise<ShippedSampling> {
  let sha256: string;
  try {
    sha256 = await sha256Hex(bytes);
  } catch (err) {
    return { steps: FALLBACK_STEPS, measured: false, table: [], note: `${(err as Error).message} Using ${FALLBACK_STEPS} steps.` };
  }
  return shippedSampling(name, { bytes: bytes.length, sha256 });
}

/** One sentence when the loaded models are placeholders (their metadata names a placeholder preset), else ''. */
export function modelsNotice(models: LoadedModel[]): string {
  return placeholderNotice(...models.map((m) => m.metadata)) ?? '';
}

/** The side a model was trained at (its base grid times the patch). */
export function baseSize(m: LoadedModel): number {
  const g = m.model.config.baseGrid;
  const side = Array.isArray(g) ? g[0] : typeof g === 'number' ? g : 16;
  return side * m.model.config.patchSize;
}

/** Checks a prompt against the shapes grammar; returns the InputError's message, or undefined when it parses. */
export function promptError(prompt: string): string | undefined {
  try {
    parseCaption(prompt);
    return undefined;
  } catch (err) {
    if (isInputError(err)) return (err as Error).message;
    throw err;
  }
}

export interface RunOptions {
  prompt: string;
  steps: number;
  sampler: SamplerName;
  cfg: number;
  seed: number;
  size: number;
  signal: AbortSignal;
  /** Called with the current clean-image estimate, CHW in [-1, 1], after every step. */
  onStep: (info: { step: number; total: number; ms: number; image: Float32Array }) => void;
}

/** Runs one model on the prompt; returns the final image (CHW, [-1, 1]) and the median ms per step. */
export async function runModel(m: LoadedModel, o: RunOptions): Promise<{ image: Float32Array; msPerStep: number }> {
  const { images, msPerStep } = await generate({
    model: m.model,
    encoder: m.encoder,
    prediction: m.prediction,
    prompt: o.prompt,
    steps: o.steps,
    sampler: o.sampler,
    cfg: o.cfg,
    seed: o.seed,
    size: o.size,
    signal: o.signal,
    onStep: async ({ step, total, ms, x0 }) => {
      const first = tf.tidy(() => tf.slice(x0, [0, 0, 0, 0], [1, -1, -1, -1]));
      const image = (await first.data()) as Float32Array;
      first.dispose();
      o.onStep({ step, total, ms, image });
      await yieldToBrowser();
    },
  });
  try {
    return { image: (await images.data()) as Float32Array, msPerStep };
  } finally {
    images.dispose();
  }
}

/**
 * Lets the browser paint the step's picture and handle input (such as Cancel) before the next step: on
 * wasm and cpu every await resolves at once, so without this the page freezes for the whole run. A
 * visible page waits for its next frame; a hidden one (no frames) takes a MessageChannel task, which,
 * unlike setTimeout, background tabs do not throttle.
 */
function yieldToBrowser(): Promise<void> {
  return new Promise((resolve) => {
    if (document.visibilityState === 'visible') {
      requestAnimationFrame(() => resolve());
      return;
    }
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(null);
  });
}

/** Writes a CHW image in [-1, 1] onto a canvas of the image's size. */
export function drawImage(canvas: HTMLCanvasElement, chw: Float32Array, size: number): void {
  if (canvas.width !== size) canvas.width = size;
  if (canvas.height !== size) canvas.height = size;
  const ctx = canvas.getContext('2d');
  if (ctx == null) return;
  const img = ctx.createImageData(size, size);
  const plane = size * size;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      img.data[4 * i + c] = (chw[c * plane + i] + 1) * 127.5; // Uint8ClampedArray: rounds and clamps to 0..255
    }
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

export interface ScanPoint {
  length: number;
  scanMs: number;
  attentionMs: number;
}

/**
 * Times ssdScan (Mamba-2, linear in L) against attention (quadratic in L) at each sequence length on the
 * current backend: one warm-up, then the median of `repeats` runs, each synchronised by reading the output.
 * Shapes: 4 heads of width 32, d_state 32, one group; attention over the same heads.
 */
export async function timeScan(lengths: number[], repeats: number, signal: AbortSignal, onPoint: (p: ScanPoint) => void): Promise<void> {
  const H = 4;
  const P = 32;
  const N = 32;
  for (const L of lengths) {
    if (signal.aborted) return;
    const x = tf.randomNormal([1, L, H, P]);
    const dt = tf.randomUniform([1, L, H], 0.01, 0.1);
    const A = tf.neg(tf.randomUniform([H], 0.5, 2));
    const B = tf.randomNormal([1, L, 1, N]);
    const C = tf.randomNormal([1, L, 1, N]);
    const q = tf.randomNormal([1, H, L, P]);
    const k = tf.randomNormal([1, H, L, P]);
    const v = tf.randomNormal([1, H, L, P]);
    try {
      const time = async (fn: () => tf.Tensor): Promise<number> => {
        const runs: number[] = [];
        for (let r = 0; r <= repeats; r++) {
          const t0 = performance.now();
          const out = fn();
          await out.data();
          out.dispose();
          if (r > 0) runs.push(performance.now() - t0); // run 0 compiles the kernels
          await yieldToBrowser();
        }
        runs.sort((a, b) => a - b);
        return runs[Math.floor(runs.length / 2)];
      };
      const scanMs = await time(() => ssdScan({ x, dt, A, B, C }).y);
      if (signal.aborted) return;
      const attentionMs = await time(() => attention(q, k, v));
      onPoint({ length: L, scanMs, attentionMs });
    } finally {
      tf.dispose([x, dt, A, B, C, q, k, v]);
      // the next length needs buffers of other sizes: give this one's pooled buffers back to the device
      releaseFreeBuffers();
    }
  }
}
