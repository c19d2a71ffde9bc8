/**
 * Activation recomputation (gradient checkpointing) for tfjs's gradient tape.
 *
 * Under `tf.variableGrads` / `tf.grads` every op records what its gradient needs, so a deep model's
 * backward holds every layer's intermediates at once. `recomputed(f, xs, weights)` runs `f` as ONE node
 * of the tape: its forward keeps nothing but its inputs, and its backward runs `f` again under a tape
 * of its own and back-propagates through that, then frees it. The backward then holds the inputs of
 * every wrapped part plus one part's intermediates, at the price of one more forward of each part.
 *
 * `f` must be deterministic (no random draws inside: the two forwards must be the same function) and
 * must read every weight it should give a gradient to either from `xs` or from `weights`; weights it
 * reads that are not listed are constants (no gradient reaches them), which is how a caller skips the
 * weight gradients of frozen weights.
 *
 * Off a tape (inference, or the frozen teacher's pass) it is just `f(xs, consts)`.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The engine internals this file relies on (tfjs-core 4.x: `runKernelFunc` is what `customGrad` uses). */
interface EngineInternals {
  state: { gradientDepth: number; kernelDepth: number; activeTape: unknown[] | null };
  runKernelFunc(params: {
    forwardFunc: (backend: unknown, save: (tensors: tf.Tensor[]) => void) => tf.Tensor | tf.Tensor[];
    backwardsFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => Record<string, () => tf.Tensor>;
    inputs: Record<string, tf.Tensor>;
  }): tf.Tensor | tf.Tensor[];
  gradients(
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy?: tf.Tensor,
    allowNoGradients?: boolean,
  ): { value: tf.Tensor; grads: (tf.Tensor | undefined)[] };
}

const engine = () => tf.engine() as unknown as EngineInternals;

/** True while a gradient tape records (inside `tf.grads` / `tf.variableGrads`, outside any kernel). */
export function tapeIsRecording(): boolean {
  const s = engine().state;
  return s.gradientDepth > 0 && s.kernelDepth === 0;
}

/**
 * `f(xs, consts)` as one tape node whose backward recomputes it (see the file comment).
 * @param f the part to wrap; returns one tensor or several (every output may carry a gradient)
 * @param xs float tensors gradients flow to (activations: the part's inputs)
 * @param weights variables `f` reads from its closure that get gradients (the trained ones)
 * @param consts tensors `f` reads without a gradient (masks); kept alive for the backward
 */
export function recomputed<T extends tf.Tensor | tf.Tensor[]>(
  f: (xs: tf.Tensor[], consts: tf.Tensor[]) => T,
  xs: readonly tf.Tensor[],
  weights: readonly tf.Variable[] = [],
  consts: readonly tf.Tensor[] = [],
): T {
  if (!tapeIsRecording()) return f([...xs], [...consts]);
  for (const x of xs) {
    if (x.dtype !== 'float32') throw new Error(`recomputed: xs must be float32 tensors (gradients flow to them), got ${x.dtype}.`);
  }
  const nx = xs.length;
  const inputs: Record<string, tf.Tensor> = {};
  [...xs, ...weights].forEach((t, i) => {
    inputs[i] = t;
  });
  let multi = false;
  const eng = engine();
  const out = eng.runKernelFunc({
    inputs,
    // Runs with the tape paused (kernelDepth > 0) inside a tidy: nothing of f is recorded or kept, but
    // the inputs (clones sharing their data), which the caller may dispose before the backward.
    forwardFunc: (_backend, save) => {
      save([...xs, ...consts]);
      const r = f([...xs], [...consts]);
      multi = Array.isArray(r);
      return r;
    },
    backwardsFunc: (dy, saved) => {
      const dys = Array.isArray(dy) ? dy : [dy];
      const sx = saved.slice(0, nx);
      const sc = saved.slice(nx);
      const wrt = [...sx, ...weights];
      // f again, on a tape of its own. With several outputs, the gradient of Σ_i Σ(out_i · dy_i) is
      // the vector-Jacobian product the outer backward asks for (engine.gradients takes one y).
      const forward = (): tf.Tensor => {
        const r = f(sx, sc);
        const outs = Array.isArray(r) ? r : [r];
        if (!multi) return outs[0]!;
        return tf.addN(outs.map((o, i) => tf.sum(tf.mul(o, dys[i]!))));
      };
      // The outer backward runs with no tape recording (gradientDepth 0), so the inner `gradients`
      // starts a fresh tape and, when done, frees it and sets the engine's `activeTape` to null: the
      // outer `gradients` still needs its tape afterwards (to free what its ops saved), so put it back.
      const outerTape = eng.state.activeTape;
      let res: { value: tf.Tensor; grads: (tf.Tensor | undefined)[] };
      try {
        res = eng.gradients(forward, wrt, multi ? undefined : dys[0], true);
      } finally {
        eng.state.activeTape = outerTape;
      }
      res.value.dispose();
      const grads: Record<string, () => tf.Tensor> = {};
      res.grads.forEach((g, i) => {
        const gi = g ?? tf.zerosLike(wrt[i]!);
        grads[i] = () => gi;
      });
      return grads;
    },
  });
  return out as T;
}

/**
 * `f()` computed without a gradient: to the tape its result is a constant (a node with no inputs). For
 * by-products of a `recomputed` part that a caller wants to read but not differentiate.
 */
export function withoutGradient<T extends tf.Tensor>(f: () => T): T {
  if (!tapeIsRecording()) return f();
  return engine().runKernelFunc({
    inputs: {},
    forwardFunc: () => f(),
    backwardsFunc: () => ({}),
  }) as T;
}
