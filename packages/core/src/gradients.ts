// Registers the gradient of every tfjs-core op on the shared engine (see scripts/bundle-gradients.mjs
// for why this is a generated bundle rather than a deep import).
import './generated/register-gradients.js';
import * as tf from '@tensorflow/tfjs-core';

/**
 * tfjs-core's Sum and Mean gradients broadcast dy by multiplying it with `ones(x.shape)`, and `ones`
 * builds that tensor in a JavaScript array: on WebGPU every backward pass through a sum or mean then
 * fills x.size floats on the CPU and uploads them (8 MB for one [64, 256, 128] mixer-loss term). These
 * replacements give the same values, dy spread over the reduced axes (divided by their size for Mean),
 * built on the device as `zerosLike(x) + dy`. Not `broadcastTo`: WebGPU's Tile runs on the CPU for
 * rank ≥ 5 and whenever dy is small and not yet uploaded, which the seed gradient of a loss always is.
 */
function spreadGrad(kernelName: 'Sum' | 'Mean'): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const axes = tf.util.parseAxisParam((attrs as unknown as { axis: number | number[] }).axis, x.shape);
      const expanded = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const count = axes.reduce((n, a) => n * x.shape[a], 1);
      return {
        x: () => {
          const g = tf.reshape(kernelName === 'Mean' ? tf.div(dy as tf.Tensor, count) : (dy as tf.Tensor), expanded);
          // gradients are float32 whatever x is, as tfjs-core's own (an int sum's dy is int)
          return tf.add(tf.zerosLike(x), g.dtype === 'float32' ? g : tf.cast(g, 'float32'));
        },
      };
    },
  };
}

tf.registerGradient(spreadGrad('Sum'));
tf.registerGradient(spreadGrad('Mean'));

/** Gradients register when this module loads; calling it documents the dependency. */
export function gradientsRegistered(): true {
  return true;
}
