/**
 * An error caused by the caller's input (a shape, a flag, a file, a prompt), as opposed to a failure
 * while running. The CLI maps it to exit code 2 and prints only its message, so the message must say
 * what was wrong and how to mend it, in one sentence.
 */
export class InputError extends Error {
  override readonly name = 'InputError';
}

/** True for errors that describe bad input rather than a failure while running. */
export function isInputError(err: unknown): err is InputError {
  return err instanceof InputError;
}
