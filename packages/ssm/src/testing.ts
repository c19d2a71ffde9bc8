/** References made only of tfjs-core ops (and plain loops), for tests and for anyone checking the fast kernels. */

export { causalConv1dSiluGradValues, causalConv1dSiluValues, causalConv1dValues } from './mixer/conv1d.js';
export { gatedNormGradValues, gatedNormSharedValues, gatedNormValues } from './mixer/gated-norm.js';
export { causalConv1dShifted, causalConv1dSiluRef } from './mixer/layers.js';
export { bidirectionalReference, mamba2Reference } from './mixer/reference.js';
export * from './selective/reference.js';
export { ssdBackwardValues, ssdForwardValues } from './ssd/cpu.js';
export * from './ssd/reference.js';
export { setWasmSimdScan, wasmSimdScanThreads } from './ssd/simd-scan.js';
