/**
 * `npm run coordinator -- <command>`: the coordinator's command line. Each command lives in
 * coordinator/commands/; this file only dispatches and turns errors into one line on stderr.
 */
import { FmnistError } from '../shared/errors.ts';
import { COMMAND_USAGE } from './command-usage.ts';

type Command = (argv: string[]) => Promise<number>;

/** Commands load lazily: `summary` should not pay for Redis, gRPC or the data set. */
const COMMANDS: Record<string, { run: Command; usage: string }> = {
  summary: { run: async (argv) => (await import('./commands/summary.ts')).summaryCommand(argv), usage: COMMAND_USAGE.summary },
  train: { run: async (argv) => (await import('./commands/train.ts')).trainCommand(argv), usage: COMMAND_USAGE.train },
  launch: { run: async (argv) => (await import('./commands/launch.ts')).launchCommand(argv), usage: COMMAND_USAGE.launch },
  resume: { run: async (argv) => (await import('./commands/resume.ts')).resumeCommand(argv), usage: COMMAND_USAGE.resume },
  status: { run: async (argv) => (await import('./commands/status.ts')).statusCommand(argv), usage: COMMAND_USAGE.status },
  list: { run: async (argv) => (await import('./commands/list.ts')).listCommand(argv), usage: COMMAND_USAGE.list },
  report: { run: async (argv) => (await import('./commands/report.ts')).reportCommand(argv), usage: COMMAND_USAGE.report },
  cancel: { run: async (argv) => (await import('./commands/cancel.ts')).cancelCommand(argv), usage: COMMAND_USAGE.cancel },
  serve: { run: async (argv) => (await import('./commands/serve.ts')).serveCommand(argv), usage: COMMAND_USAGE.serve },
};

function usage(): string {
  return ['usage: npm run coordinator -- <command> [flags]', '', ...Object.values(COMMANDS).map((c) => `  ${c.usage.replace(/\n/g, '\n  ')}`)].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`error [CONFIG_INVALID]: unknown command '${name}'; commands: ${Object.keys(COMMANDS).join(', ')}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: npm run coordinator -- ${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    const verbose = rest.includes('--verbose');
    const code = error instanceof FmnistError ? ` [${error.code}]` : '';
    process.stderr.write(`error${code}: ${(error as Error).message}\n`);
    if (verbose) process.stderr.write(`${(error as Error).stack}\n`);
    return 1;
  }
}

/**
 * A reader that went away (`launch ... --json | head -1`) is a request to stop, handled like
 * Ctrl-C (local workers stop cleanly, the run stays resumable), not a crash that would leave
 * them running.
 */
let readerGone = false;
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  // Later writes fail too; a second SIGTERM would force the exit before Redis and workers are closed.
  if (readerGone) return;
  readerGone = true;
  process.kill(process.pid, 'SIGTERM');
});

process.exitCode = await main(process.argv.slice(2));
