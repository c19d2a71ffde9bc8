export type { BidirectionalMambaConfig } from './bidirectional.js';
export { BidirectionalMamba, FUSED_PER_CALL_TOKENS } from './bidirectional.js';
export type { Mamba2Config, Mamba2Dims } from './config.js';
export { MAMBA2_DEFAULTS, mamba2Dims, mamba2WeightShapes, resolveMamba2Config } from './config.js';
export { causalConv1dSilu, registerConv1dKernels } from './conv1d.js';
export { gatedRmsNormFused, registerGatedNormKernels } from './gated-norm.js';
export { initMamba2Weights, softplusInverse } from './init.js';
export { causalConv1d, gatedRmsNorm } from './layers.js';
export {
  Mamba2Mixer,
  type Mamba2Projections,
  mamba2Core,
  mamba2Forward,
  mamba2InProj,
  mamba2InProjParts,
  mamba2OutWeight,
  type XbcParts,
} from './mamba2.js';
