export type { AttentionOptions } from './attention.js';
export { attention, registerAttentionKernels } from './attention.js';
export { ATTENTION, ATTENTION_GRAD } from './attention-kernels.js';
export { attentionRef } from './attention-ref.js';
