// Registers the gradient of every tfjs-core op on the shared engine (see scripts/bundle-gradients.mjs
// for why this is a generated bundle rather than a deep import).
import './generated/register-gradients.js';

/** Gradients register when this module loads; calling it documents the dependency. */
export function gradientsRegistered(): true {
  return true;
}
