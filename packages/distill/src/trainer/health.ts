/**
 * Whether a training step's numbers can be trusted. A WebGPU error (out of memory, an invalid bind
 * group, a lost device) does not throw: the failed kernel, and every kernel of its command buffer,
 * leaves its output as it was, so the loss and the weights read back afterwards are garbage. On
 * 2026-12-07 three distillation runs sharing an 80 GB H100 ran out of device memory: each logged a loss
 * of 2.0 for 900 steps and wrote an untrained model. The loop checks at every metrics line (where it
 * reads the loss back anyway, so the check costs no extra sync) and stops the run instead.
 */
import { takeWebGPUErrors, webgpuDeviceLost } from '@t2md/core';

/** A run stopped because its step went wrong on the device or its loss is not a number. */
export class TrainingFailedError extends Error {
  override readonly name = 'TrainingFailedError';
}

/**
 * Throws a TrainingFailedError when the device reported an error since the last call, or `loss` is not
 * finite; clears the reported errors either way.
 */
export function checkStepHealth(stage: string, step: number, loss: number): void {
  const errors = takeWebGPUErrors();
  const lost = webgpuDeviceLost();
  const lostSteps = 'the weights since the last checkpoint are not saved';
  if (errors.length > 0 || lost != null) {
    const first = (lost ?? errors[0] ?? '').split('\n')[0];
    throw new TrainingFailedError(
      `stage '${stage}' stopped at step ${step}: the WebGPU device reported ${Math.max(errors.length, 1)} error(s), the first: "${first}"; ${lostSteps}: free device memory (fewer runs on the GPU, or recompute) and resume the run.`,
    );
  }
  if (!Number.isFinite(loss)) {
    throw new TrainingFailedError(
      `stage '${stage}' stopped at step ${step}: the loss is ${loss}; ${lostSteps}: check the data for non-finite values, or start again from the last checkpoint with init and a lower lr.`,
    );
  }
}
