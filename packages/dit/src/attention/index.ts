export type { AttentionOptions, HeadsAttentionOptions } from './attention.js';
export { attention, headsAttention, registerAttentionKernels } from './attention.js';
export { ATTENTION, ATTENTION_GRAD } from './attention-kernels.js';
export { attentionRef } from './attention-ref.js';
