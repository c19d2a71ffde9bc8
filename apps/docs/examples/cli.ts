// The CLI is also a library: buildProgram() returns the `t2md` commander program, so a script can run
// any subcommand in-process (here `t2md info --json`).
import { buildProgram } from '@t2md/cli';

const program = buildProgram();
await program.parseAsync(['node', 't2md', 'info', '--json']);
