import { type BackendName, initBackend, webgpuDetails } from '@t2md/core';
import { packageVersions } from '../versions.js';

export interface InfoOptions {
  json?: boolean;
  backend?: 'auto' | BackendName;
}

/** `t2md info`: the backend initBackend picks, its adapter and limits, and package versions. */
export async function infoCommand(opts: InfoOptions): Promise<void> {
  const info = await initBackend({ backend: opts.backend ?? 'auto' });
  const details = webgpuDetails();
  const report = {
    ...info,
    ...(details ? { limits: details.limits, features: details.features } : {}),
    node: process.versions.node,
    platform: `${process.platform}-${process.arch}`,
    versions: packageVersions(),
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const lines = [
    `backend   ${info.backend}${info.software ? ' (software)' : ''}`,
    info.adapter ? `adapter   ${info.adapter.vendor} / ${info.adapter.architecture} / ${info.adapter.description}` : 'adapter   none',
  ];
  if (details) {
    for (const [k, v] of Object.entries(details.limits)) lines.push(`  ${k.padEnd(34)} ${v}`);
    lines.push(`  features ${details.features.join(', ')}`);
  }
  lines.push(`node      ${report.node} (${report.platform})`);
  for (const [k, v] of Object.entries(report.versions)) lines.push(`  ${k.padEnd(34)} ${v}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
