export type { AttentionOptions, HeadsAttentionOptions } from './attention.js';
export { attention, headsAttention, registerAttentionKernels } from './attention.js';
export { SCORE_BLOCK } from './attention-host.js';
export { ATTENTION, ATTENTION_GRAD } from './attention-kernels.js';
export { attentionRef } from './attention-ref.js';
export type { AttentionTiles } from './attention-webgpu.js';
export { ATTENTION_TILES } from './attention-webgpu.js';
