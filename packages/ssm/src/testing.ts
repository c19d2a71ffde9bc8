/** References made only of tfjs-core ops (and plain loops), for tests and for anyone checking the fast kernels. */

export * from './selective/reference.js';
export * from './ssd/reference.js';
