import { Command, Option } from 'commander';
import { infoCommand } from './commands/info.js';
import { BACKENDS } from './options.js';

/** Builds the `t2md` command tree. Each command's action resolves when its work is done. */
export function buildProgram(): Command {
  const program = new Command('t2md')
    .description('Diffusion Transformer-to-Mamba distillation on TensorFlow.js and WebGPU')
    .showHelpAfterError(false)
    .exitOverride()
    // commander prints its own one-line usage errors; bin.ts only picks the exit code.
    .configureOutput({
      outputError: (str, write) => write(`t2md: ${str.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')} See t2md --help.\n`),
    });
  program
    .command('info')
    .description('show the backend, the WebGPU adapter and its limits, and package versions')
    .option('--json', 'print one JSON document')
    .addOption(new Option('--backend <name>', 'backend to start').choices(BACKENDS))
    .action(infoCommand);
  return program;
}
