export type { BothDirections } from './gather.js';
export { bothDirections, fromBothDirections, gatherTokens, toBothDirections } from './gather.js';
export type { ScanOrder, ScanPermutation, ScanPermutationOptions } from './scan-order.js';
export { invertPermutation, reversePermutation, SCAN_ORDERS, scanPermutation } from './scan-order.js';
