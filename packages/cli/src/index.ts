export type { RunContext, SourceStamp } from './bench/results.js';
export { SECTIONS } from './bench/results.js';
export { checkResults, pruneResults, resultsFiles } from './bench/results-check.js';
export { describeError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
export { main } from './main.js';
export { buildProgram } from './program.js';
