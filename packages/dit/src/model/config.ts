import { assertInt, check, InputError } from '@t2md/core';
import { type MixerKind, parseLayout } from './layout.js';

/** Settings of every Mamba-2 token mixer of a model (mamba_ssm's `Mamba2` names; see @t2md/ssm). */
export interface MambaSettings {
  /** SSM state size N (T2MD: 256). */
  readonly dState: number;
  /** d_inner = expand * hiddenSize (T2MD: 2). */
  readonly expand: number;
  /** Head dim P; nheads = d_inner / headdim (Mamba-2 default 64). */
  readonly headdim: number;
  /** Groups sharing B and C (default 1). */
  readonly ngroups?: number;
  /** Causal conv width (default 4). */
  readonly dConv?: number;
  /** SSD chunk length (default 64). */
  readonly chunkSize?: number;
  /** How the forward and reversed scans are merged (default 'concat': a linear layer on both; the paper does not say). */
  readonly merge?: 'concat' | 'sum';
  /**
   * Scan the grid order and its reverse (default true, as in the paper). `false` is the paper's
   * "unidirectional scan" ablation: one mamba_ssm `Mamba2` per block over the HM / WM order only, with
   * no merge layer (so its weights are exactly mamba_ssm's names under `blocks.N.mixer.`).
   */
  readonly bidirectional?: boolean;
}

/**
 * The 2D sin-cos positional embeddings (`gridCoordinates` gives each one's coordinates):
 * - `'sincos'`: DiT/PixArt's at the training grid, token (i, j) at (i, j), a larger grid extends the range;
 * - `'centered'`: T2MD's resolution adaptation, centred and scaled to the base grid's long edge;
 * - `'interpolated'`: PixArt's base-size scaling, (i, j)·base/grid: `'sincos'` at the base grid, and the
 *   trained range at any other grid (to sample a `'sincos'` model at another size).
 */
export const POS_EMBED_KINDS = ['sincos', 'centered', 'interpolated'] as const;
export type PosEmbedKind = (typeof POS_EMBED_KINDS)[number];

/**
 * A DiT / hybrid model, as plain readonly data (configs are data: nanoGPT's `GPTConfig`, DiT's factories).
 * Shapes use N (batch), T (tokens), D (hiddenSize).
 */
export interface DiTConfig {
  /** Image / latent channels C (4 for an SD VAE latent, 3 for RGB). */
  readonly inChannels: number;
  /** Patch size p: a p×p patch of the input is one token. */
  readonly patchSize: number;
  /** Width D. */
  readonly hiddenSize: number;
  /** Number of blocks; optional because it follows from `layout` (when given it must agree). */
  readonly depth?: number;
  /** Attention heads (SA mixers and cross-attention); D / numHeads is the head dim. */
  readonly numHeads: number;
  /** MLP hidden = D * mlpRatio (default 4). */
  readonly mlpRatio?: number;
  /** Width Dc of the caption features fed to the model (4096 for T5-XXL). */
  readonly captionChannels: number;
  /** Caption tokens Lc of the learned null caption `y_embedder.y_embedding` (PixArt: 120); none when absent. */
  readonly captionLength?: number;
  /** Predict the variance too (PixArt): the output has 2C channels, eps first (default false). */
  readonly learnSigma?: boolean;
  /** Block mixers, e.g. `'SA*28'` or `'SA-(HM-WM)x3-SA-(HM-WM)x3'` (see `parseLayout`). */
  readonly layout: string;
  /** Settings of the Mamba mixers (used by HM and WM blocks). */
  readonly mamba?: MambaSettings;
  /** Positional embedding (default 'sincos'). */
  readonly posEmbed?: PosEmbedKind;
  /** Token grid [rows, cols] the model was trained at; the 'centered' and 'interpolated' embeddings keep its long edge's range. */
  readonly baseGrid?: readonly [number, number];
  /** Seed of the initial weights (default 0). */
  readonly seed?: number;
}

/** A config with every default filled in (what `model.config` holds and what checkpoints store). */
export interface ResolvedDiTConfig extends DiTConfig {
  readonly depth: number;
  readonly mlpRatio: number;
  readonly learnSigma: boolean;
  readonly mamba: Required<MambaSettings>;
  readonly posEmbed: PosEmbedKind;
  readonly seed: number;
}

export const MAMBA_DEFAULTS: Required<MambaSettings> = {
  dState: 256,
  expand: 2,
  headdim: 64,
  ngroups: 1,
  dConv: 4,
  // 128, not mamba_ssm's 256: ssdScan's forward measured fastest there on the H100 (L = 16384: 3.4 ms
  // of GPU time at chunk 128 against 3.9 at 64 and 3.8 at 256; bench/results/2026-11-26-h100.json at 887adff).
  chunkSize: 128,
  merge: 'concat',
  bidirectional: true,
};

/**
 * Fills in defaults and checks that the sizes fit together; throws one InputError naming the field.
 * Returns the frozen resolved config and the parsed layout.
 */
export function resolveConfig(config: DiTConfig): { config: ResolvedDiTConfig; layout: MixerKind[] } {
  check(config != null && typeof config === 'object', 'config must be an object such as pixartXL2 or {...tinyTeacher, layout: "SA*4"}.');
  const known = new Set([
    'inChannels',
    'patchSize',
    'hiddenSize',
    'depth',
    'numHeads',
    'mlpRatio',
    'captionChannels',
    'captionLength',
    'learnSigma',
    'layout',
    'mamba',
    'posEmbed',
    'baseGrid',
    'seed',
  ]);
  for (const k of Object.keys(config))
    check(known.has(k), () => `config.${k} is not a DiT config field; the fields are ${[...known].join(', ')}.`);
  assertInt('config.inChannels', config.inChannels, 1);
  assertInt('config.patchSize', config.patchSize, 1);
  assertInt('config.hiddenSize', config.hiddenSize, 1);
  assertInt('config.numHeads', config.numHeads, 1);
  assertInt('config.captionChannels', config.captionChannels, 1);
  if (config.captionLength != null) assertInt('config.captionLength', config.captionLength, 1);
  const D = config.hiddenSize;
  check(D % config.numHeads === 0, () => `config.hiddenSize (${D}) must be divisible by config.numHeads (${config.numHeads}).`);
  check(D % 4 === 0, () => `config.hiddenSize (${D}) must be a multiple of 4 (the 2D sin-cos embedding splits it into four parts).`);
  const mlpRatio = config.mlpRatio ?? 4;
  check(
    typeof mlpRatio === 'number' && mlpRatio > 0 && Number.isInteger(D * mlpRatio),
    () => `config.mlpRatio must be positive with hiddenSize * mlpRatio an integer, got ${String(config.mlpRatio)}.`,
  );
  const layout = parseLayout(config.layout);
  if (config.depth != null) {
    check(
      config.depth === layout.length,
      () =>
        `config.depth (${config.depth}) disagrees with config.layout '${config.layout}' (${layout.length} blocks); drop depth or fix the layout.`,
    );
  }
  const posEmbed = config.posEmbed ?? 'sincos';
  check(
    (POS_EMBED_KINDS as readonly string[]).includes(posEmbed),
    () => `config.posEmbed must be one of ${POS_EMBED_KINDS.map((k) => `'${k}'`).join(', ')}, got ${JSON.stringify(posEmbed)}.`,
  );
  if (config.baseGrid != null) {
    check(
      Array.isArray(config.baseGrid) && config.baseGrid.length === 2,
      () => `config.baseGrid must be [rows, cols], got ${JSON.stringify(config.baseGrid)}.`,
    );
    assertInt('config.baseGrid[0]', config.baseGrid[0], 1);
    assertInt('config.baseGrid[1]', config.baseGrid[1], 1);
  }
  const seed = config.seed ?? 0;
  assertInt('config.seed', seed, 0, 2 ** 32 - 1);
  const learnSigma = config.learnSigma ?? false;
  check(typeof learnSigma === 'boolean', () => `config.learnSigma must be true or false, got ${String(learnSigma)}.`);
  const mamba = { ...MAMBA_DEFAULTS, ...stripUndefined(config.mamba ?? {}) } as Required<MambaSettings>;
  check(
    typeof mamba.expand === 'number' && mamba.expand > 0,
    () => `config.mamba.expand must be a positive number, got ${String(mamba.expand)}.`,
  );
  assertInt('config.mamba.dState', mamba.dState, 1);
  assertInt('config.mamba.headdim', mamba.headdim, 1);
  assertInt('config.mamba.ngroups', mamba.ngroups, 1);
  assertInt('config.mamba.dConv', mamba.dConv, 1);
  assertInt('config.mamba.chunkSize', mamba.chunkSize, 1);
  check(
    mamba.merge === 'concat' || mamba.merge === 'sum',
    () => `config.mamba.merge must be 'concat' or 'sum', got ${JSON.stringify(mamba.merge)}.`,
  );
  check(
    typeof mamba.bidirectional === 'boolean',
    () => `config.mamba.bidirectional must be true or false, got ${JSON.stringify(mamba.bidirectional)}.`,
  );
  if (layout.some((k) => k !== 'SA')) {
    const dInner = mamba.expand * D;
    check(
      Number.isInteger(dInner) && dInner % mamba.headdim === 0 && (dInner / mamba.headdim) % mamba.ngroups === 0,
      () =>
        `config.mamba does not fit hiddenSize ${D}: expand * hiddenSize (${dInner}) must be a multiple of headdim (${mamba.headdim}) and the head count a multiple of ngroups (${mamba.ngroups}).`,
    );
  }
  const resolved: ResolvedDiTConfig = {
    inChannels: config.inChannels,
    patchSize: config.patchSize,
    hiddenSize: D,
    depth: layout.length,
    numHeads: config.numHeads,
    mlpRatio,
    captionChannels: config.captionChannels,
    ...(config.captionLength != null ? { captionLength: config.captionLength } : {}),
    learnSigma,
    layout: config.layout,
    mamba: Object.freeze(mamba),
    posEmbed,
    ...(config.baseGrid != null ? { baseGrid: Object.freeze([config.baseGrid[0], config.baseGrid[1]] as [number, number]) } : {}),
    seed,
  };
  return { config: Object.freeze(resolved), layout };
}

/** Parses a config stored as JSON (a checkpoint's `t2md.config`), as an InputError when it is not JSON. */
export function configFromJson(text: string, where: string): DiTConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${where} is not valid JSON (${(err as Error).message}); re-save the model with saveDiT.`);
  }
  check(parsed != null && typeof parsed === 'object' && !Array.isArray(parsed), `${where} must be a JSON object holding a DiT config.`);
  return parsed as DiTConfig;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
