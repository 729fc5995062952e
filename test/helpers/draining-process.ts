/**
 * A process for test/shutdown-signal.test.ts: installs the shutdown hook with a drain step
 * that takes `argv[2]` ms and then exits with code 7, prints "ready", and idles.
 */
import { installShutdownSignal } from '../../shared/process/shutdown-signal.ts';

const drainMs = Number(process.argv[2] ?? 500);
const shutdown = installShutdownSignal({ exitCode: 130, log: (line) => process.stdout.write(`${line}\n`) });
shutdown.onDrain(async () => {
  await new Promise((resolve) => setTimeout(resolve, drainMs));
  process.stdout.write('drained\n');
  process.exit(7);
});
setInterval(() => {}, 1_000);
process.stdout.write('ready\n');
