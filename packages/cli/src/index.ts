export type { RunContext, SourceStamp } from './bench/results.js';
export { SECTIONS } from './bench/results.js';
export { checkResults, pruneResults, resultsFiles } from './bench/results-check.js';
export type { ScoredModel, ScoreOptions, Scores } from './commands/eval.js';
export { scoreModel } from './commands/eval.js';
export { describeError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './errors.js';
export { main } from './main.js';
export { buildProgram } from './program.js';
