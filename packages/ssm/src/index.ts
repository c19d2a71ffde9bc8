export * from './ssd/index.js';
export * from './selective/index.js';
export * from './mixer/index.js';
export * from './scan-order/index.js';
