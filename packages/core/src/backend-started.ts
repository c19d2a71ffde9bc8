import * as tf from '@tensorflow/tfjs-core';

/**
 * Whether tfjs has started (initialised) the backend `name`. Not `tf.findBackend(name) != null`: for a
 * backend that is registered but not started, findBackend starts it, so asking would run the backend
 * module's own factory (tfjs's single-threaded wasm build, with its process handlers; a second
 * WebGPU adapter request) behind the back of the factory we are about to put in its place.
 */
export function backendStarted(name: string): boolean {
  return name in tf.engine().registry;
}
