/**
 * Plain-loop references of the dit kernels (what their cpu and wasm kernels were before they were
 * built on the backends' own kernels), for tests and for anyone checking the fast kernels.
 */

export type { AttentionDims } from './attention/attention-loops.js';
export { attentionBackwardValues, attentionForwardValues } from './attention/attention-loops.js';
export { adaNormValues } from './model/ops/ada-norm.js';
export { gatedAddValues } from './model/ops/gated-add.js';
