export { SCAN_ORDERS, invertPermutation, reversePermutation, scanPermutation } from './scan-order.js';
export type { ScanOrder, ScanPermutation, ScanPermutationOptions } from './scan-order.js';
export { gatherTokens } from './gather.js';
