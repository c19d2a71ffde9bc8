/** Plain-text tables of the benchmark rows for stdout (without --json). */
import type { AttentionRow } from './attention.js';
import type { SampleRow } from './sample.js';
import type { ScalingRow } from './scaling.js';
import type { ScanRow } from './scan.js';
import type { TrainRow } from './train.js';

type Column<R> = [header: string, cell: (row: R) => string];

const num = (x: number | null | undefined, digits = 2): string => (x == null ? '—' : x.toFixed(digits));
const sci = (x: number | null | undefined): string => (x == null ? '' : x.toExponential(1));

/** Right-aligned columns under a header and a rule. */
export function formatTable<R>(rows: readonly R[], columns: readonly Column<R>[]): string {
  const cells = [columns.map(([h]) => h), ...rows.map((r) => columns.map(([, f]) => f(r)))];
  const widths = columns.map((_, j) => Math.max(...cells.map((line) => line[j]!.length)));
  const fmt = (line: string[]) =>
    line
      .map((c, j) => c.padStart(widths[j]!))
      .join('  ')
      .trimEnd();
  return [
    fmt(cells[0]!),
    widths
      .map((w) => '-'.repeat(w))
      .join('  ')
      .trimEnd(),
    ...cells.slice(1).map(fmt),
  ].join('\n');
}

export function scanTable(rows: readonly ScanRow[]): string {
  return formatTable(rows, [
    ['op', (r) => r.op],
    ['impl', (r) => r.impl],
    ['L', (r) => String(r.L)],
    ['heads×P', (r) => `${r.heads}×${r.headdim}`],
    ['N', (r) => String(r.dstate)],
    ['Q', (r) => (r.chunkSize == null ? '-' : String(r.chunkSize))],
    ['variant', (r) => r.variant ?? '-'],
    ['tile', (r) => r.gemmTile ?? '-'],
    ['pass', (r) => r.pass],
    ['ms', (r) => num(r.ms)],
    ['GB/s', (r) => (r.gbps == null ? '—' : r.gbps.toPrecision(3))],
    ['device MiB', (r) => num(r.devicePeakMB, 0)],
    ['rel err', (r) => (r.error ? `failed: ${r.error.slice(0, 40)}` : sci(r.relErr))],
  ]);
}

export function attentionTable(rows: readonly AttentionRow[]): string {
  return formatTable(rows, [
    ['heads×L×Dh', (r) => `${r.heads}×${r.tokens}×${r.headDim}`],
    ['fwd ms', (r) => num(r.fwdMs)],
    ['TFLOP/s', (r) => (r.fwdTflops == null ? '—' : r.fwdTflops.toPrecision(3))],
    ['fwd+bwd ms', (r) => num(r.fwdBwdMs)],
    ['naive fwd', (r) => num(r.naiveFwdMs)],
    ['naive fwd+bwd', (r) => num(r.naiveFwdBwdMs)],
    ['device MiB', (r) => num(r.devicePeakMB, 0)],
    ['rel err', (r) => (r.error ? `failed: ${r.error.slice(0, 40)}` : sci(r.relErrVsNaive))],
  ]);
}

export function scalingTable(rows: readonly ScalingRow[]): string {
  return formatTable(rows, [
    ['tokens', (r) => String(r.tokens)],
    ['batch', (r) => String(r.batch)],
    ['teacher ms', (r) => num(r.teacherMs)],
    ['student ms', (r) => num(r.studentMs)],
    ['speed-up', (r) => (r.ratio == null ? '—' : `${r.ratio.toFixed(2)}×`)],
    ['T attn/cross/rest', (r) => `${num(r.teacherAttnMs, 1)}/${num(r.teacherCrossMs, 1)}/${num(r.teacherRestMs, 1)}`],
    [
      'S attn/mamba/cross/rest',
      (r) => `${num(r.studentAttnMs, 1)}/${num(r.studentMambaMs, 1)}/${num(r.studentCrossMs, 1)}/${num(r.studentRestMs, 1)}`,
    ],
    ['T MiB', (r) => num(r.teacherMB, 0)],
    ['S MiB', (r) => num(r.studentMB, 0)],
    ['T device MiB', (r) => num(r.teacherDeviceMB, 0)],
    ['S device MiB', (r) => num(r.studentDeviceMB, 0)],
    ['', (r) => (r.error ? `failed: ${r.error.slice(0, 60)}` : '')],
  ]);
}

/** The ops that took most of a profiled piece of work, under a title. */
function profileTable(title: string, ops: readonly NonNullable<TrainRow['profile']>[number][]): string {
  return `\n${title}\n${formatTable(ops, [
    ['op', (o) => o.op],
    ['ms', (o) => num(o.ms, 2)],
    ['share', (o) => `${(100 * o.share).toFixed(1)}%`],
    ['calls', (o) => String(o.calls)],
  ])}`;
}

export function sampleTable(rows: readonly SampleRow[]): string {
  const table = formatTable(rows, [
    ['model', (r) => r.model],
    ['images', (r) => String(r.batch)],
    ['ms/step', (r) => num(r.msPerStep, 1)],
    ['ms/image-step', (r) => num(r.msPerImageStep, 1)],
    ['GFLOP/image-step', (r) => num(r.gflopPerImageStep, 3)],
    ['GFLOP/s', (r) => num(r.gflops, 2)],
    ['matMul GFLOP/s', (r) => num(r.matmulGflops, 2)],
    ['share', (r) => (r.shareOfMatmul == null ? '—' : `${(100 * r.shareOfMatmul).toFixed(0)}%`)],
    ['device MiB', (r) => num(r.devicePeakMB, 0)],
    ['error', (r) => r.error ?? ''],
  ]);
  const profiles = rows
    .filter((r) => r.profile != null && r.profile.length > 0)
    .map((r) => profileTable(`${r.model} ${r.batch} image${r.batch === 1 ? '' : 's'}: top ops of one guided model call`, r.profile!));
  return [table, ...profiles].join('\n');
}

export function trainTable(rows: readonly TrainRow[]): string {
  const table = formatTable(rows, [
    ['step', (r) => r.step],
    ['batch', (r) => String(r.batch)],
    ['ms/step', (r) => num(r.msPerStep, 1)],
    ['samples/s', (r) => num(r.samplesPerSec, 0)],
    ['host ms', (r) => num(r.hostMsPerStep, 1)],
    ['data ms', (r) => num(r.dataMsPerStep, 1)],
    ['dispatches', (r) => (r.kernelsPerStep == null ? '—' : String(r.kernelsPerStep))],
    ['GPU ms', (r) => num(r.gpuMsPerStep, 1)],
    ['device MiB', (r) => num(r.devicePeakMB, 0)],
    ['error', (r) => r.error ?? ''],
  ]);
  const profiles = rows
    .filter((r) => r.profile != null && r.profile.length > 0)
    .map((r) => profileTable(`${r.step} batch ${r.batch}: top ops by GPU time`, r.profile!));
  return [table, ...profiles].join('\n');
}
