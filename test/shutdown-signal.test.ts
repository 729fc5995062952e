/**
 * shared/process/shutdown-signal.ts in real processes: the first signal drains, the same signal
 * again forces the exit, and the other signal after the first (a supervisor's SIGTERM after a
 * terminal's SIGINT) lets the drain finish.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './helpers/cli.ts';

const CHILD = path.join(REPO_ROOT, 'test', 'helpers', 'draining-process.ts');

/** Starts the child, sends `signals` 100 ms apart once it is ready; its exit code and output. */
async function signalled(signals: NodeJS.Signals[], drainMs = 800): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, String(drainMs)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  const ready = new Promise<void>((resolve) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk;
      if (output.includes('ready')) resolve();
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await ready;
  for (const signal of signals) {
    child.kill(signal);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { code: await exited, output };
}

test('one signal runs the drain steps', async (t) => {
  const { code, output } = await signalled(['SIGTERM']);
  t.is(code, 7);
  t.regex(output, /SIGTERM: stopping after the current step/);
  t.regex(output, /drained/);
});

test('the same signal twice forces the exit without waiting for the drain', async (t) => {
  const { code, output } = await signalled(['SIGINT', 'SIGINT']);
  t.is(code, 130);
  t.regex(output, /SIGINT again: exiting now/);
  t.notRegex(output, /drained/);
});

test('SIGTERM after SIGINT (Ctrl-C, then the supervisor) lets the drain finish', async (t) => {
  const { code, output } = await signalled(['SIGINT', 'SIGTERM']);
  t.is(code, 7);
  t.regex(output, /SIGTERM after SIGINT: already stopping/);
  t.regex(output, /drained/);
});
