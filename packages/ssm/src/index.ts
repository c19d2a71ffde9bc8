export * from './mixer/index.js';
export * from './scan-order/index.js';
export * from './selective/index.js';
export * from './ssd/index.js';
