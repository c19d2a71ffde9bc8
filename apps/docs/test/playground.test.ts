// The playground in a real browser: Debian's Chromium driven by playwright-core (never a downloaded
// browser), WebGPU on SwiftShader where no GPU exists, serving the BUILT site (apps/docs/dist) with the
// shipped models of @t2md/shapes. Run `npm run build` first.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shippedModelsNotice } from './shipped.js';
import { type StaticServer, serveStatic } from './static-server.js';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(here, 'dist');
const results = join(here, 'test-results');
const CHROMIUM = process.env.T2MD_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-gpu-sandbox',
];
/** Generous bounds for a 2-core CI machine with WebGPU on SwiftShader (software). */
const READY_MS = 60_000;
const GENERATE_MS = 240_000;
/**
 * Issue 26: one 32-px image on wasm, in a browser without WebGPU, within 5 s of the click. That is a
 * speed target, measured on an idle machine with `T2MD_TIMING=1` (bench/README.md, "Sampling without
 * WebGPU"); in a full test run the other test files share the two cores (one run took 5.1 s where the
 * idle machine takes 2.2 s), so there the bound is only a guard against a hang or a gross regression.
 */
const GENERATE_ONE_WASM_MS = process.env.T2MD_TIMING === '1' ? 5_000 : 20_000;

let server: StaticServer;
let browser: Browser;

interface Opened {
  page: Page;
  /** Uncaught exceptions and console errors. */
  errors: string[];
  status(): Promise<string>;
}

async function open(name: string, prepare?: (page: Page) => Promise<unknown>, from: Browser = browser): Promise<Opened> {
  const page = await from.newPage({ viewport: { width: 1100, height: 1300 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`[${name}] page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`[${name}] console error: ${m.text()} (${m.location().url})`);
  });
  await prepare?.(page);
  await page.goto(`${server.url}/playground.html`);
  const status = async () => ((await page.getByTestId('status').textContent()) ?? '').trim();
  await waitForStatus(page, /^Ready: |missing/, READY_MS);
  return { page, errors, status };
}

/**
 * Waits until the status text matches. A MutationObserver in the page (a microtask after the DOM
 * update) rather than polling: while wasm computes a step, the page's timers may not run at all.
 */
async function waitForStatus(page: Page, re: RegExp, timeout: number, testId = 'status'): Promise<string> {
  await page.getByTestId(testId).waitFor({ timeout });
  const seen = page.evaluate(
    ([src, flags, id]) =>
      new Promise<string>((resolve) => {
        const el = document.querySelector(`[data-testid="${id}"]`)!;
        const want = new RegExp(src, flags);
        const check = (): boolean => {
          const text = el.textContent ?? '';
          if (!want.test(text)) return false;
          observer.disconnect();
          resolve(text);
          return true;
        };
        const observer = new MutationObserver(check);
        if (!check()) observer.observe(el, { childList: true, characterData: true, subtree: true });
      }),
    [re.source, re.flags, testId] as const,
  );
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(async () => {
      const now = await page
        .getByTestId(testId)
        .textContent({ timeout: 5_000 })
        .catch(() => '<unreadable>');
      reject(new Error(`${testId} never matched ${re} within ${timeout} ms; it says: ${now}`));
    }, timeout);
  });
  try {
    return (await Promise.race([seen, late])).trim();
  } finally {
    clearTimeout(timer);
  }
}

interface Frame {
  step: number;
  hash: number;
  /** Every pixel written at that moment (the blank canvas is transparent). */
  drawn: boolean;
  at: number;
}

/** Records a hash of the output canvas every time the status reports a step (the step-by-step drawing), and every status text. */
async function recordFrames(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __frames: Frame[]; __statuses: { text: string; at: number }[] };
    w.__frames = [];
    w.__statuses = [];
    const status = document.querySelector('[data-testid="status"]')!;
    const canvas = document.querySelector('[data-testid="output"]') as HTMLCanvasElement;
    new MutationObserver(() => {
      w.__statuses.push({ text: status.textContent ?? '', at: performance.now() });
      const m = /step (\d+) of (\d+)/.exec(status.textContent ?? '');
      if (m == null) return;
      const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let h = 0;
      let opaque = 0;
      for (let i = 0; i < d.length; i++) h = (Math.imul(h, 31) + d[i]) | 0;
      for (let i = 3; i < d.length; i += 4) opaque += d[i] === 255 ? 1 : 0;
      w.__frames.push({ step: Number(m[1]), hash: h, drawn: opaque === canvas.width * canvas.height, at: performance.now() });
    }).observe(status, { childList: true, characterData: true, subtree: true });
  });
}

interface CanvasStats {
  width: number;
  height: number;
  opaque: number;
  distinctColors: number;
  /** Share of pixels with the most common colour (the background, for a shapes image). */
  modeShare: number;
  /** Standard deviation of all RGB values, 0..255. */
  std: number;
}

async function canvasStats(page: Page, testId: string): Promise<CanvasStats> {
  return page.evaluate((id) => {
    const c = document.querySelector(`[data-testid="${id}"]`) as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const n = c.width * c.height;
    const counts = new Map<number, number>();
    let opaque = 0;
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const key = (d[4 * i] << 16) | (d[4 * i + 1] << 8) | d[4 * i + 2];
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (d[4 * i + 3] === 255) opaque++;
      for (let k = 0; k < 3; k++) {
        sum += d[4 * i + k];
        sq += d[4 * i + k] ** 2;
      }
    }
    const mean = sum / (3 * n);
    return {
      width: c.width,
      height: c.height,
      opaque: opaque / n,
      distinctColors: counts.size,
      modeShare: Math.max(...counts.values()) / n,
      std: Math.sqrt(Math.max(0, sq / (3 * n) - mean * mean)),
    };
  }, testId);
}

function expectGenerated(s: CanvasStats, size: number): void {
  expect(s.width).toBe(size);
  expect(s.height).toBe(size);
  expect(s.opaque).toBe(1); // every pixel written (the blank canvas is transparent)
  expect(s.distinctColors).toBeGreaterThanOrEqual(8);
  expect(s.modeShare).toBeLessThan(0.97); // not one flat colour: something is drawn on the background
  expect(s.std).toBeGreaterThan(2);
}

async function setControls(page: Page, o: { prompt: string; model: string; steps: number; seed?: number }): Promise<number> {
  await page.getByTestId('prompt').fill(o.prompt);
  await page.getByTestId('model').selectOption(o.model);
  await page.getByTestId('steps').fill(String(o.steps));
  await page.getByTestId('seed').fill(String(o.seed ?? 0));
  const sizes = await page
    .getByTestId('size')
    .locator('option')
    .evaluateAll((els) => els.map((e) => Number((e as HTMLOptionElement).value)));
  const smallest = Math.min(...sizes);
  await page.getByTestId('size').selectOption(String(smallest));
  return smallest;
}

beforeAll(async () => {
  const need = ['playground.html', 'models/teacher.safetensors', 'models/student.safetensors'];
  const missing = need.filter((f) => !existsSync(join(dist, f)));
  if (missing.length > 0) {
    throw new Error(
      `apps/docs/dist lacks ${missing.join(', ')}. The playground test needs the built site with the shipped models: ` +
        'put teacher.safetensors and student.safetensors in packages/shapes/models/ and run `npm run build` (the docs build copies them to dist/models/).',
    );
  }
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} does not exist; install Debian's chromium package (apt-get install chromium).`);
  mkdirSync(results, { recursive: true });
  server = await serveStatic(dist);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('playground (built site, headless Chromium)', () => {
  it('draws the teacher step by step on WebGPU and reports backend, adapter and ms per step', async () => {
    const { page, errors, status } = await open('webgpu');
    await page.getByTestId('backend').selectOption('webgpu');
    const ready = await waitForStatus(page, /^Ready: |rror|not available/, READY_MS);
    // WebGPU is expected here: Chromium offers SwiftShader's adapter when no GPU exists.
    expect(ready).toMatch(/^Ready: webgpu on \S/);
    const size = await setControls(page, { prompt: 'a red circle above a blue square', model: 'teacher', steps: 4, seed: 3 });
    await recordFrames(page);
    const t0 = Date.now();
    const clickedAt = await page.evaluate(() => performance.now());
    await page.getByTestId('generate').click();
    const done = await waitForStatus(page, /ms per step|rror|annot|Cancelled/, GENERATE_MS);
    console.log(`webgpu: ${done} (${Date.now() - t0} ms in all)`);
    expect(done).toMatch(/^webgpu on \S.* — teacher \d+(\.\d+)? ms per step \(4 dpmpp-2m steps/);
    expect(Number(/teacher (\d+(?:\.\d+)?) ms per step/.exec(done)?.[1])).toBeGreaterThan(0);

    // Drawn after every step, and the picture changed while sampling.
    const frames = await page.evaluate(() => (window as unknown as { __frames: Frame[] }).__frames);
    console.log(`webgpu: ${frames.length} status updates, ${new Set(frames.map((f) => f.hash)).size} distinct pictures`);
    expect([...new Set(frames.map((f) => f.step))].sort()).toEqual([1, 2, 3, 4]);
    expect(frames.every((f) => f.drawn)).toBe(true); // the canvas held a picture from step 1 on ...
    expect(new Set(frames.map((f) => f.hash)).size).toBeGreaterThanOrEqual(2); // ... which changed as it denoised

    // A first step slower than a second (SwiftShader compiling the shaders) is announced before it ends.
    const statuses = await page.evaluate(() => (window as unknown as { __statuses: { text: string; at: number }[] }).__statuses);
    const step1 = statuses.find((x) => /step 1 of 4/.test(x.text))!;
    const announced = statuses.some((x) => /compiling WebGPU shaders for the first step/.test(x.text) && x.at < step1.at);
    console.log(`webgpu: first step after ${(step1.at - clickedAt).toFixed(0)} ms; compile announced: ${announced}`);
    if (step1.at - clickedAt > 2500) expect(announced).toBe(true);

    expectGenerated(await canvasStats(page, 'output'), size);
    await page.screenshot({ path: join(results, 'playground.png'), fullPage: true });
    expect(errors).toEqual([]);
    expect(await status()).toBe(done);
    await page.close();
  });

  it('auto picks hardware WebGPU or falls back and says why; side by side draws both models', async () => {
    const { page, errors, status } = await open('auto');
    const ready = await status();
    const backend = /^Ready: (\w+)/.exec(ready)?.[1];
    console.log(`auto: ${ready}`);
    expect(['webgpu', 'wasm', 'cpu']).toContain(backend);
    if (backend === 'webgpu') expect(ready).not.toContain('(software)');
    // Why, on its own line under the status: e.g. "auto took wasm: the only WebGPU adapter is software (google / swiftshader / …)"
    const why = (await page.getByTestId('backend-note').textContent()) ?? '';
    console.log(`auto, why: ${why}`);
    expect(why).toMatch(backend === 'webgpu' ? /^auto took the hardware WebGPU adapter / : /^auto took (wasm|cpu): .+/);
    // the static site sends no COOP/COEP headers: wasm says it runs single-threaded, and why
    if (backend === 'wasm')
      expect(why).toMatch(/ wasm runs its (simd|plain) build on 1 thread: the page is not cross-origin isolated \(no COOP\/COEP headers\)/);
    expect(ready.length, ready).toBeLessThanOrEqual(60); // the status stays one short line
    // placeholders say so above the controls, as long as their metadata names a placeholder preset
    const modelsNote = page.getByTestId('models-note');
    expect((await modelsNote.count()) === 0 ? undefined : (await modelsNote.textContent())?.trim()).toBe(shippedModelsNotice());
    const size = await setControls(page, { prompt: 'two green triangles', model: 'both', steps: 3, seed: 1 });
    await page.getByTestId('generate').click();
    const done = await waitForStatus(page, /ms per step|rror|annot|Cancelled/, GENERATE_MS);
    console.log(`auto, side by side: ${done}`);
    expect(done).toMatch(new RegExp(`^${backend}\\b.* — teacher \\d+(\\.\\d+)? ms per step, student \\d+(\\.\\d+)? ms per step`));
    expectGenerated(await canvasStats(page, 'output'), size);
    expectGenerated(await canvasStats(page, 'output-2'), size);
    await page.screenshot({ path: join(results, 'playground-side-by-side.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('wasm without WebGPU: one 32-px image of the default model at its measured steps in ≤ 5 s, warm-up included', async () => {
    // Chromium without WebGPU: a browser of its own, started without the WebGPU flags (so no SwiftShader
    // GPU process shares the CPU with it), and navigator.gpu absent. auto takes wasm, single-threaded
    // (the static site sends no COOP/COEP headers).
    const plain = await chromium.launch({ executablePath: CHROMIUM, args: ARGS.filter((a) => !/webgpu|Vulkan|gpu-sandbox/i.test(a)) });
    try {
      const { page, errors, status } = await open(
        'no-webgpu',
        (p) => p.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true })),
        plain,
      );
      const ready = await status();
      expect(ready).toMatch(/^Ready: wasm\b/);
      expect(await page.getByTestId('backend-note').textContent()).toMatch(/^auto took wasm: /);
      // The page's own step count: the default model's (student) measured one, from the step table of @t2md/shapes.
      const steps = Number(await page.getByTestId('steps').inputValue());
      const note = ((await page.getByTestId('steps-note').textContent()) ?? '').trim();
      console.log(`no-webgpu: ${ready}; ${steps} steps (${note})`);
      expect(note, 'the step table must cover the shipped models: regenerate it with bench/step-table.mjs').toMatch(
        new RegExp(`^Steps: ${steps} steps: the fewest whose eval score`),
      );
      expect(await page.getByTestId('model').inputValue()).toBe('student');
      await page.getByTestId('prompt').fill('a red circle above a blue square');
      await page.getByTestId('size').selectOption('32');
      await recordFrames(page);
      // Timed in the page, from the click to the final status (a MutationObserver, not polling), twice:
      // the first run is what a visitor waits for (it includes the wasm kernels' first calls), the second is warm.
      const timeOne = async (which: string): Promise<number> => {
        const ms = await page.evaluate(
          () =>
            new Promise<number>((resolve) => {
              const w = window as unknown as { __statuses: { text: string; at: number }[]; __clicked: number };
              w.__statuses.length = 0;
              const el = document.querySelector('[data-testid="status"]')!;
              const button = document.querySelector('[data-testid="generate"]') as HTMLButtonElement;
              const t0 = performance.now();
              w.__clicked = t0;
              new MutationObserver((_, o) => {
                if (!/ms per step|rror|annot|Cancelled/.test(el.textContent ?? '')) return;
                o.disconnect();
                resolve(performance.now() - t0);
              }).observe(el, { childList: true, characterData: true, subtree: true });
              button.click();
            }),
        );
        expect(await status()).toMatch(
          new RegExp(`^wasm — student \\d+(\\.\\d+)? ms per step \\(${steps} dpmpp-2m steps, 32×32 px, seed 0\\)\\.$`),
        );
        // where the time went: the first step's wait (warm-up included) and each step's compute, as the page reported them
        const { statuses, clicked } = await page.evaluate(() => {
          const w = window as unknown as { __statuses: { text: string; at: number }[]; __clicked: number };
          return { statuses: w.__statuses, clicked: w.__clicked };
        });
        const stepMs = statuses.map((x) => /step \d+ of \d+ \((\d+) ms\)/.exec(x.text)?.[1]).filter((x) => x != null);
        const first = statuses.find((x) => /step 1 of/.test(x.text));
        console.log(
          `no-webgpu ${which}: ${ms.toFixed(0)} ms; step 1 shown after ${first ? (first.at - clicked).toFixed(0) : '?'} ms; steps ${stepMs.join(', ')} ms`,
        );
        return ms;
      };
      const first = await timeOne('first');
      const warm = await timeOne('warm');
      console.log(`no-webgpu: one 32-px image in ${first.toFixed(0)} ms (first, warm-up included), ${warm.toFixed(0)} ms (warm)`);
      expectGenerated(await canvasStats(page, 'output'), 32);
      expect(first).toBeLessThanOrEqual(GENERATE_ONE_WASM_MS);
      expect(warm).toBeLessThanOrEqual(GENERATE_ONE_WASM_MS);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await plain.close();
    }
  });

  it('shows the grammar error for a prompt outside the shapes world, and cancels a run', async () => {
    const { page, errors } = await open('input');
    await page.getByTestId('prompt').fill('a purple elephant');
    await page.getByTestId('generate').click();
    const bad = await waitForStatus(page, /Cannot parse|rror/, 30_000);
    expect(bad).toMatch(/^Cannot parse caption "a purple elephant": expected a shape .* at "elephant"/);
    expect(await page.getByTestId('status').getAttribute('class')).toContain('error');

    await setControls(page, { prompt: 'a small yellow square', model: 'student', steps: 100 });
    await page.getByTestId('generate').click();
    await waitForStatus(page, /step [2-9] of 100/, GENERATE_MS);
    const t0 = Date.now();
    await page.getByTestId('cancel').click();
    const cancelled = await waitForStatus(page, /^Cancelled/, 60_000);
    console.log(`cancelled ${Date.now() - t0} ms after the click: ${cancelled}`);
    expect(cancelled).toMatch(/^Cancelled\. (webgpu|wasm|cpu)/);
    await expect(page.getByTestId('generate').isEnabled()).resolves.toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('says so clearly when the model files are missing', async () => {
    const { page, errors, status } = await open('missing', (p) =>
      p.route('**/models/*.safetensors', (r) => r.fulfill({ status: 404, body: 'not found' })),
    );
    const text = await status();
    expect(text).toMatch(
      /^The model files are missing: \/models\/teacher\.safetensors is missing \(HTTP 404\); \/models\/student\.safetensors is missing/,
    );
    await page.getByTestId('generate').click();
    expect(await waitForStatus(page, /^Cannot generate/, 10_000)).toContain('missing');
    // The 404s themselves are logged by the browser; nothing else may fail.
    expect(errors.filter((e) => !/status of 404/.test(e))).toEqual([]);
    await page.close();
  });

  it('times ssdScan against attention on the page backend and plots them', async () => {
    const { page, errors } = await open('scan');
    await page.getByTestId('scan-run').click();
    const text = await waitForStatus(page, /median of 3 runs|rror/, GENERATE_MS, 'scan-status');
    console.log(`scan: ${text}`);
    expect(text).toMatch(/^(webgpu|wasm|cpu)\b.* — median of 3 runs/);
    const rows = await page
      .locator('.t2md-scan-table tbody tr')
      .evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => Number(td.textContent))));
    expect(rows.map((r) => r[0])).toEqual([64, 128, 256, 512]);
    for (const [, scan, att] of rows) {
      expect(scan).toBeGreaterThan(0);
      expect(att).toBeGreaterThan(0);
    }
    await expect(page.locator('.t2md-scan svg polyline').count()).resolves.toBe(2);
    expect(errors).toEqual([]);
    await page.close();
  });
});
