import { CommanderError } from 'commander';
import type { RunContext } from './bench/results.js';
import { setRunContext } from './context.js';
import { describeError, EXIT_OK, EXIT_USAGE } from './errors.js';
import { buildProgram } from './program.js';

/**
 * Runs `t2md` on an argv (as process.argv: node, script, ...args) and resolves to its exit code.
 * `context` is what an entry point knows beyond the CLI (bench/gpu.ts: the bundle's source stamp and
 * Dawn flags), recorded with bench results.
 */
export async function main(argv: string[] = process.argv, context: RunContext = {}): Promise<number> {
  setRunContext(context);
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT_OK;
      return EXIT_USAGE;
    }
    const { code, line } = describeError(err, program.opts().debug === true);
    process.stderr.write(`${line}\n`);
    return code;
  }
}
