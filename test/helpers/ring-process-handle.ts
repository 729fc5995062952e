/**
 * The parent's side of ring-member-process.ts: forks one child per rank and exchanges its
 * commands and replies as promises.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RingProcessCommand, RingProcessReply } from './ring-member-process.ts';

const ENTRY = fileURLToPath(new URL('./ring-member-process.ts', import.meta.url));

/** One ring member in a child process. */
export class RingProcessHandle {
  private readonly replies: RingProcessReply[] = [];
  private readonly waiters: Array<(reply: RingProcessReply) => void> = [];
  private exitCode: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    child.on('message', (reply: RingProcessReply) => {
      const waiter = this.waiters.shift();
      if (waiter !== undefined) waiter(reply);
      else this.replies.push(reply);
    });
    this.exitCode = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /**
   * Forks a child running `node --import tsx [nodeFlags] ring-member-process.ts`.
   * @param nodeFlags extra Node flags, e.g. ['--cpu-prof'] @default []
   */
  static fork(nodeFlags: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): RingProcessHandle {
    const execArgv = ['--import', 'tsx', ...nodeFlags];
    return new RingProcessHandle(fork(ENTRY, [], { execArgv, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }

  /** Sends a command (its replies come through {@link next}). */
  send(command: RingProcessCommand): void {
    this.child.send(command);
  }

  /** The child's next reply, in order; rejects if the child exits first. */
  next(): Promise<RingProcessReply> {
    const queued = this.replies.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      this.waiters.push(resolve);
      void this.exitCode.then((code) => reject(new Error(`ring process ${this.child.pid} exited (${code}) before replying`)));
    });
  }

  /** Sends `command` and returns the next reply, which must be of type `expected`. */
  async request<T extends RingProcessReply['type']>(command: RingProcessCommand, expected: T): Promise<Extract<RingProcessReply, { type: T }>> {
    this.send(command);
    const reply = await this.next();
    if (reply.type !== expected) throw new Error(`expected ${expected} from ring process ${this.child.pid}, got ${JSON.stringify(reply)}`);
    return reply as Extract<RingProcessReply, { type: T }>;
  }

  /** Resolves with the exit code once the child is gone. */
  exited(): Promise<number | null> {
    return this.exitCode;
  }

  /** Asks the child to close its member and exit; kills it if it has not after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    // A child that is dying already may refuse the message; the kill below covers it.
    if (this.child.connected) this.child.send({ type: 'close' } satisfies RingProcessCommand, () => {});
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exitCode;
    clearTimeout(timer);
  }
}
