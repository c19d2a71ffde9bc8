/** Mamba-1 selective scan: public API of `@t2md/ssm` (the reference lives in `@t2md/ssm/testing`). */

export { SELECTIVE_SCAN, SELECTIVE_SCAN_BACKWARD, selectiveScanChunkSize } from './kernels.js';
export type { SelectiveScanInputs, SelectiveScanOptions, SelectiveScanResult } from './selective-scan.js';
export { checkSelectiveScanInputs, registerSelectiveScanKernels, selectiveScan } from './selective-scan.js';
export { selectiveScanTraffic } from './traffic.js';
