/**
 * shared/process/shutdown-signal.ts in real processes: the first signal drains, the same signal
 * again forces the exit, and the other signal after the first (a supervisor's SIGTERM after a
 * terminal's SIGINT) lets the drain finish. Each step waits for the child to report the one
 * before it (test/helpers/draining-process.ts), so no step depends on how fast the machine is.
 */
import test from 'ava';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { REPO_ROOT } from './helpers/cli.ts';

const CHILD = path.join(REPO_ROOT, 'test', 'helpers', 'draining-process.ts');

/** The child, its output lines so far, and a way to wait for one of them. */
class DrainingProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly waiting: { line: string; nth: number; resolve: () => void }[] = [];

  constructor() {
    this.child = spawn(process.execPath, ['--import', 'tsx', CHILD], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    let pending = '';
    this.child.stdout.on('data', (chunk: Buffer) => {
      const parts = (pending + chunk.toString()).split('\n');
      pending = parts.pop()!;
      for (const line of parts) {
        this.lines.push(line);
        for (const waiter of this.waiting) if (this.count(waiter.line) >= waiter.nth) waiter.resolve();
      }
    });
    // A child that has exited reads no more: writing to it then is not an error of the test's.
    this.child.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => this.child.on('exit', resolve));
  }

  /**
   * Resolves once the child has printed `line` for the `nth` time, or has exited (so that a
   * child that misbehaves fails the test's next check instead of hanging it).
   */
  printed(line: string, nth = 1): Promise<void> {
    if (this.count(line) >= nth) return Promise.resolve();
    const printed = new Promise<void>((resolve) => this.waiting.push({ line, nth, resolve }));
    return Promise.race([printed, this.exited.then(() => {})]);
  }

  count(line: string): number {
    return this.lines.filter((seen) => seen === line).length;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Lets the drain step end. */
  finishDrain(): void {
    this.child.stdin.write('finish\n');
  }
}

async function started(): Promise<DrainingProcess> {
  const child = new DrainingProcess();
  await child.printed('ready');
  return child;
}

test('one signal runs the drain steps', async (t) => {
  const child = await started();
  child.signal('SIGTERM');
  await child.printed('saw SIGTERM');
  child.finishDrain();
  t.is(await child.exited, 7);
  t.deepEqual(child.lines, ['ready', 'draining SIGTERM', 'saw SIGTERM', 'drained']);
});

test('the same signal twice forces the exit without waiting for the drain', async (t) => {
  const child = await started();
  child.signal('SIGINT');
  await child.printed('saw SIGINT');
  child.signal('SIGINT');
  // Forced: the process ends while its drain still waits. Not forced: the hook lets the second
  // SIGINT through to the child's own listener, which says so.
  await child.printed('saw SIGINT', 2);
  child.finishDrain();
  t.is(await child.exited, 130);
  t.deepEqual(child.lines, ['ready', 'draining SIGINT', 'saw SIGINT']);
});

test('SIGTERM after SIGINT (Ctrl-C, then the supervisor) lets the drain finish', async (t) => {
  const child = await started();
  child.signal('SIGINT');
  await child.printed('saw SIGINT');
  child.signal('SIGTERM');
  await child.printed('saw SIGTERM');
  child.finishDrain();
  t.is(await child.exited, 7, 'the drain finished: the SIGTERM did not force the exit');
  t.deepEqual(child.lines, ['ready', 'draining SIGINT', 'saw SIGINT', 'saw SIGTERM', 'drained'], 'the drain ran once');
});
