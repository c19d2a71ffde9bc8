import { CommanderError } from 'commander';
import { describeError, EXIT_OK, EXIT_USAGE } from './errors.js';
import { buildProgram } from './program.js';

/** Runs `t2md` on an argv (as process.argv: node, script, ...args) and resolves to its exit code. */
export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT_OK;
      return EXIT_USAGE;
    }
    const { code, line } = describeError(err);
    process.stderr.write(`${line}\n`);
    return code;
  }
}
