import { type AdapterSummary, type BackendName, backendReport, initBackend, listAdapters, wasmBuild, webgpuDetails } from '@t2md/core';
import { describeDevice, gitSource } from '../bench/results.js';
import { runContext } from '../context.js';
import { packageVersions } from '../versions.js';

export interface InfoOptions {
  json?: boolean;
  backend?: 'auto' | BackendName;
}

const name = (a: AdapterSummary) =>
  `${[a.vendor, a.architecture, a.description].filter(Boolean).join(' / ') || 'unnamed'}${a.software ? ' (software)' : ''}`;

/**
 * `t2md info`: the backend initBackend picks and why, which wasm build runs on how many threads and why
 * (on wasm), every WebGPU adapter found, the active adapter's limits and features, and package versions;
 * `--json` also names the card and device as results files do, and the source the CLI was built from. What Dawn and the drivers print while looking for
 * adapters is kept off stderr (`--json` has it as `probeLog`).
 */
export async function infoCommand(opts: InfoOptions): Promise<void> {
  const info = await initBackend({ backend: opts.backend ?? 'auto' });
  const why = backendReport();
  // wasm or cpu named outright skip the adapter search; info lists the adapters anyway (in a child process).
  const found = why && (why.requested === 'auto' || why.requested === 'webgpu') ? why : await listAdapters();
  const details = webgpuDetails();
  const wasm = info.backend === 'wasm' ? wasmBuild() : undefined;
  // What a results file names the machine by (bench rows, bench/ablation.sh): the card, the device
  // without the host name, the driver, and the source the CLI was built from (a GPU bundle's stamp, else git).
  const { card, device, driver } = describeDevice(info);
  const report = {
    ...info,
    card,
    device,
    driver: driver ?? null,
    source: runContext().source ?? gitSource(),
    reason: why?.reason ?? '',
    ...(wasm ? { wasm } : {}),
    adapters: found.adapters,
    ...(details ? { limits: details.limits, features: details.features } : {}),
    node: process.versions.node,
    platform: `${process.platform}-${process.arch}`,
    versions: packageVersions(),
    probeLog: [...(why?.log ?? []), ...(found !== why ? found.log : [])],
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const passedOver = info.backend !== 'webgpu' && found.adapters.some((a) => a.software);
  const lines = [
    `backend   ${info.backend}${info.software ? ' (software)' : ''}`,
    `why       ${report.reason}${passedOver && why?.requested === 'auto' ? ' Use it anyway with --backend webgpu.' : ''}`,
    ...(wasm ? [`wasm      ${wasm.build}, ${wasm.threads} thread${wasm.threads === 1 ? '' : 's'}: ${wasm.reason}`] : []),
    info.adapter ? `adapter   ${name({ ...info.adapter, software: info.software })}` : 'adapter   none in use',
    `adapters  ${found.adapters.length > 0 ? found.adapters.map(name).join('; ') : 'no WebGPU adapter found'}`,
  ];
  if ('problem' in found && found.problem) lines.push(`          (${found.problem})`);
  if (report.probeLog.length > 0)
    lines.push(`          (the WebGPU probe logged ${report.probeLog.length} lines: t2md info --json shows them as probeLog)`);
  if (details) {
    for (const [k, v] of Object.entries(details.limits)) lines.push(`  ${k.padEnd(34)} ${v}`);
    lines.push(`  features ${details.features.join(', ')}`);
  }
  lines.push(`node      ${report.node} (${report.platform})`);
  for (const [k, v] of Object.entries(report.versions)) lines.push(`  ${k.padEnd(34)} ${v}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
