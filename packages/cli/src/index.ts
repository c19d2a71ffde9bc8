export { buildProgram } from './program.js';
export { describeError, UsageError, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './errors.js';
