#!/usr/bin/env node
/**
 * Merges the PyTorch baselines written by bench/torch_kernels.py, packages/ssm/bench/torch_ssd.py and
 * packages/dit/bench/torch_attention.py (each `{device, torch, baselines: [...]}`) into a results file's
 * `baselines` section, and bench/torch_train.py's rows (`{device, torch, train: [...]}`) into its `train`
 * section beside ours, so one file holds our numbers and PyTorch's from the same call on the same card.
 *
 *   node bench/merge-baselines.mjs bench/results/<date>-<card>.json torch_ssd.json torch_attention.json ...
 *
 * A baseline row replaces an older one that names the same measurement; the file is written atomically.
 * Each row gets `run`, like the bench's own rows: the commit (and dirty flag) the results file's runs
 * name, since the baselines are measured in the same call from the same tree, the date, the card's name
 * and torch's version.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const [target, ...sources] = process.argv.slice(2);
if (target == null || sources.length === 0) {
  process.stderr.write('usage: node bench/merge-baselines.mjs RESULTS.json BASELINE.json...\n');
  process.exit(2);
}
// the same list as BASELINE_KEYS in packages/cli/src/bench/results.ts (this script runs on the GPU
// machine, which has no node_modules, so it cannot import it)
const KEYS = ['op', 'impl', 'name', 'pass', 'L', 'chunkSize', 'heads', 'tokens', 'headDim', 'M', 'N', 'K', 'elements'];
const key = (r) => JSON.stringify(KEYS.map((k) => r[k] ?? null));

const doc = JSON.parse(readFileSync(target, 'utf8'));
const runs = Object.values(doc.runs ?? {});
if (doc.commit == null || runs.length === 0) {
  process.stderr.write(`${target} names no commit: merge baselines into a file written by t2md bench in the same call.\n`);
  process.exit(2);
}
const dirty = runs.some((r) => r.dirty === true);
// the card the bench rows of this file were measured on (the baselines ran on it in the same call)
const card = Object.values(doc)
  .filter(Array.isArray)
  .flat()
  .find((r) => typeof r?.run?.card === 'string')?.run.card;
const date = new Date().toISOString();
const rows = new Map((doc.baselines ?? []).map((r) => [key(r), r]));
// bench/torch_train.py writes rows of `t2md bench train`'s shape under `train`: they join that section
const TRAIN_KEYS = ['step', 'batch', 'impl', 'preset', 'recompute'];
const trainKey = (r) => JSON.stringify(TRAIN_KEYS.map((k) => r[k] ?? null));
const train = new Map((doc.train ?? []).map((r) => [trainKey(r), r]));
for (const src of sources) {
  const b = JSON.parse(readFileSync(src, 'utf8'));
  if (Array.isArray(b.train)) {
    // the twin ran in the same call, on the same card, at the same commit as our rows: it shares their
    // run stamp (the source it was run from), adding its own torch version
    const ours = (doc.train ?? []).find((r) => r.impl === 't2md' && r.run != null)?.run;
    for (const r of b.train)
      train.set(trainKey(r), { ...r, device: b.device, torch: b.torch, ...(ours ? { run: { ...ours, torch: b.torch } } : {}) });
    continue;
  }
  // torch_attention.py writes its rows under `attention` (the format of `t2md bench attention`)
  const fresh = b.baselines ?? (b.attention ?? []).map((r) => ({ op: 'attention', impl: b.impl ?? 'torch-sdpa', ...r }));
  const device = b.device === 'cuda' ? b.adapter?.description : b.device;
  const torch = b.torch ?? b.adapter?.torch;
  for (const r of fresh) {
    rows.set(key(r), { ...r, device, torch, run: { commit: doc.commit, ...(dirty ? { dirty: true } : {}), date, card, device, torch } });
  }
}
doc.baselines = [...rows.values()];
if (train.size > 0) doc.train = [...train.values()];
const tmp = `${target}.${process.pid}.tmp`;
writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`);
renameSync(tmp, target);
process.stdout.write(`${target}: ${doc.baselines.length} baseline rows, ${doc.train?.length ?? 0} train rows\n`);
