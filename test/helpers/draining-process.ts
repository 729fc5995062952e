/**
 * A process for test/shutdown-signal.test.ts. It installs the shutdown hook with one drain step
 * that prints `draining <signal>`, waits for the line `finish` on stdin, prints `drained` and
 * exits with code 7. After the hook, it listens to the signals itself and prints `saw <signal>`:
 * such a line means the hook handled that signal without exiting. It prints `ready`, then idles.
 */
import { createInterface } from 'node:readline';
import { installShutdownSignal } from '../../shared/process/shutdown-signal.ts';

const finish = new Promise<void>((resolve) => {
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'finish') resolve();
  });
});
const shutdown = installShutdownSignal({ exitCode: 130 });
shutdown.onDrain(async (signal) => {
  process.stdout.write(`draining ${signal}\n`);
  await finish;
  process.stdout.write('drained\n');
  process.exit(7);
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.stdout.write(`saw ${signal}\n`));
setInterval(() => {}, 1_000);
process.stdout.write('ready\n');
