export * from './attention/index.js';
export * from './model/index.js';
