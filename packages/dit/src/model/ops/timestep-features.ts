import { assertInt, check, fmtShape, onEveryBackend, registerKernelsOnce, runProgram, typedArrayKernel } from '@t2md/core';
import * as tf from '@tensorflow/tfjs-core';
import { engine, type GradConfig, type KernelConfig, type KernelFunc, type Tensor, type TensorInfo } from '@tensorflow/tfjs-core';
import { frequencies, TimestepFeaturesProgram } from './timestep-features-webgpu.js';

export const TIMESTEP_FEATURES = 'T2mdTimestepFeatures';

interface TimestepFeaturesAttrs {
  dim: number;
  maxPeriod: number;
}

/**
 * Sinusoidal timestep features (DiT/PixArt `TimestepEmbedder.timestep_embedding`): for k < dim/2,
 * ω_k = maxPeriod^(−k / (dim/2)), features [cos(t·ω), sin(t·ω)] (cos first), as one kernel that is
 * accurate to float32 rounding on every backend and adapter for any float32 t (the angle t·ω_k is
 * taken exactly, not rounded to float32 first). Differentiable in t.
 * @param t `[N]` timesteps, float32 (fractional allowed) or int32
 * @returns `[N, dim]` float32
 */
export function timestepFeatures(t: Tensor, dim = 256, maxPeriod = 10000): Tensor {
  check(t instanceof tf.Tensor, 't must be a tensor [N] of timesteps.');
  check(
    t.rank === 1 && (t.dtype === 'float32' || t.dtype === 'int32'),
    () => `t must be a float32 or int32 tensor [N] of timesteps, got ${t.dtype} ${fmtShape(t.shape)}.`,
  );
  assertInt('dim', dim, 2);
  check(dim % 2 === 0, () => `dim must be even (cos and sin halves), got ${dim}.`);
  check(Number.isFinite(maxPeriod) && maxPeriod > 0, () => `maxPeriod must be a positive number, got ${maxPeriod}.`);
  registerKernelsOnce(timestepFeaturesKernels, [timestepFeaturesGrad]);
  const attrs: TimestepFeaturesAttrs = { dim, maxPeriod };
  return tf.tidy(() => {
    const t32 = t.dtype === 'float32' ? t : tf.cast(t, 'float32');
    return engine().runKernel(TIMESTEP_FEATURES, { t: t32 }, attrs as unknown as tf.NamedAttrMap) as Tensor;
  });
}

/** The features in float64, rounded once to float32: the cpu and wasm kernel, and the reference. */
export function timestepFeaturesValues(t: ArrayLike<number>, dim: number, maxPeriod: number): Float32Array {
  const half = dim / 2;
  const w = frequencies(half, maxPeriod);
  const out = new Float32Array(t.length * dim);
  for (let n = 0; n < t.length; n++) {
    for (let k = 0; k < half; k++) {
      out[n * dim + k] = Math.cos(t[n]! * w[k]!);
      out[n * dim + half + k] = Math.sin(t[n]! * w[k]!);
    }
  }
  return out;
}

const jsForward = typedArrayKernel<TimestepFeaturesAttrs>(['t'], (i, { dim, maxPeriod }) => ({
  shape: [i.t!.shape[0]!, dim],
  values: timestepFeaturesValues(i.t!.values, dim, maxPeriod),
}));

const gpuForward: KernelFunc = ({ inputs, backend, attrs }) => {
  const t = inputs.t as TensorInfo;
  const { dim, maxPeriod } = attrs as unknown as TimestepFeaturesAttrs;
  const N = t.shape[0]!;
  return runProgram(backend, new TimestepFeaturesProgram(N, dim / 2, maxPeriod), [t], [{ type: 'int32', data: [(N * dim) / 2] }]);
};

export const timestepFeaturesKernels: KernelConfig[] = [...onEveryBackend(TIMESTEP_FEATURES, jsForward, gpuForward)];

/** dt = Σ_k ω_k (cos(t·ω_k)·dy_sin,k − sin(t·ω_k)·dy_cos,k), from the saved output. */
export const timestepFeaturesGrad: GradConfig = {
  kernelName: TIMESTEP_FEATURES,
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [y] = saved;
    const { dim, maxPeriod } = attrs as unknown as TimestepFeaturesAttrs;
    const half = dim / 2;
    return {
      t: () => {
        const [N] = y!.shape;
        const w = tf.tensor2d(Float32Array.from(frequencies(half, maxPeriod)), [1, half]);
        const part = (a: Tensor, k: number) => tf.slice(a, [0, k * half], [N!, half]); // [N, half]
        const d = dy as Tensor;
        return tf.sum(tf.mul(w, tf.sub(tf.mul(part(y!, 0), part(d, 1)), tf.mul(part(y!, 1), part(d, 0)))), 1); // [N]
      },
    };
  },
};
