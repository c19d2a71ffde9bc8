#!/usr/bin/env node
import { CommanderError } from 'commander';
import { describeError, EXIT_OK, EXIT_USAGE } from './errors.js';
import { buildProgram } from './program.js';

// Exit explicitly: the WebGPU binding's global navigator keeps Node's event loop alive.
async function main(): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
    return EXIT_OK;
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

main().then(
  (code) => process.exit(code),
  () => process.exit(1),
);
