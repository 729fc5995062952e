/**
 * A ring member alone in a process, driven over the Node IPC channel by a parent: the
 * cross-process tests and the all-reduce benchmark start one per rank through
 * ring-process-handle.ts. Values are generated here from a seed ({@link seededValues}), so that
 * the parent can compute the expected sums without shipping 44 MB per rank through IPC. After a
 * `choose` command, all-reduces go through the transport the worker would choose for the given
 * host ids (worker/collective-choice.ts: shared memory, hierarchical or the ring).
 */
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { CollectiveError, FmnistError } from '../../shared/errors.ts';
import { RingMember, type AllReduceTag, type AllReduceTimings, type RingOptions } from '../../worker/collective/ring-allreduce.ts';
import { chooseCollective, type ChosenCollective, type CollectiveChoice } from '../../worker/collective-choice.ts';
import { seededValues } from './seeded-values.ts';

/** Parent to child. */
export type RingProcessCommand =
  | { type: 'start'; options: RingOptions }
  | { type: 'connect'; peers: string[] }
  /** Instead of connect: chooses and connects as a worker does for these host ids (the choice's `rank` is this member's). */
  | { type: 'choose'; choice: Omit<CollectiveChoice, 'rank'> }
  | {
      type: 'all-reduce';
      /** Values per rank. */
      length: number;
      /** Seed of this rank's values (the parent picks one per rank). */
      seed: number;
      /** Round the values (scale 1000) to integers, whose sums float32 holds exactly. @default false */
      integers?: boolean;
      tag: AllReduceTag;
      /** All-reduces to run back to back, each on fresh copies of the same values. @default 1 */
      repeats?: number;
      /** Send the whole result back (base64), not only its digest. @default false */
      returnValues?: boolean;
      /** Keep the event loop busy this long after each all-reduce, as a training step's compute does. @default 0 */
      busyAfterMs?: number;
    }
  | { type: 'close' };

/** Child to parent. */
export type RingProcessReply =
  | { type: 'started'; address: string }
  | { type: 'connected' }
  | { type: 'chosen'; line: string }
  /** Sent just before the first all-reduce is called. */
  | { type: 'all-reduce-started' }
  /**
   * `marks[i]`: when all-reduce i returned here and when the busy wait after it ended, in ms on
   * the machine's clock (`performance.timeOrigin + performance.now()`), so that the parent can
   * order events of different ranks. `cpuMs`: per all-reduce, this process's CPU time (user +
   * system, every thread) during the call.
   */
  | { type: 'all-reduced'; timings: AllReduceTimings[]; marks: { returnedAt: number; busyEndedAt: number }[]; cpuMs: number[]; sha256: string; values?: string }
  | { type: 'failed'; error: { name: string; code: string; message: string; peerRank?: number } }
  | { type: 'closed' };

/** Hex SHA-256 of the values' bytes: equal digests mean bit-identical results. */
export function digestValues(values: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength))
    .digest('hex');
}

class RingProcess {
  private member: RingMember | null = null;
  private chosen: ChosenCollective | null = null;

  async handle(command: RingProcessCommand): Promise<RingProcessReply> {
    switch (command.type) {
      case 'start':
        this.member = await RingMember.start(command.options);
        return { type: 'started', address: this.member.address };
      case 'connect':
        await this.requireMember().connect(command.peers);
        return { type: 'connected' };
      case 'choose': {
        const member = this.requireMember();
        await this.chosen?.close();
        this.chosen = await chooseCollective(member, { ...command.choice, rank: member.rank });
        return { type: 'chosen', line: this.chosen.line };
      }
      case 'all-reduce':
        return this.allReduce(command);
      case 'close':
        await this.chosen?.close();
        await this.member?.close();
        return { type: 'closed' };
    }
  }

  private async allReduce(command: Extract<RingProcessCommand, { type: 'all-reduce' }>): Promise<RingProcessReply> {
    const sum = this.chosen?.sum ?? this.requireMember();
    const original = testValues(command.length, command.seed, command.integers ?? false);
    const data = new Float32Array(command.length);
    const timings: AllReduceTimings[] = [];
    const marks: { returnedAt: number; busyEndedAt: number }[] = [];
    const cpuMs: number[] = [];
    send({ type: 'all-reduce-started' });
    for (let i = 0; i < (command.repeats ?? 1); i += 1) {
      data.set(original);
      const cpuBefore = process.cpuUsage();
      timings.push(await sum.allReduceSum(data, { ...command.tag, step: command.tag.step + i }));
      const returnedAt = clock();
      const cpu = process.cpuUsage(cpuBefore);
      cpuMs.push((cpu.user + cpu.system) / 1000);
      busyWait(command.busyAfterMs ?? 0);
      marks.push({ returnedAt, busyEndedAt: clock() });
    }
    const values = command.returnValues ? Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') : undefined;
    return { type: 'all-reduced', timings, marks, cpuMs, sha256: digestValues(data), values };
  }

  private requireMember(): RingMember {
    if (this.member === null) throw new Error('send a start command first');
    return this.member;
  }
}

/** What a rank reduces: seeded values in [-1, 1), or integers in [-1000, 1000] from them. */
export function testValues(length: number, seed: number, integers: boolean): Float32Array {
  return integers ? seededValues(length, seed, 1000).map(Math.round) : seededValues(length, seed);
}

function clock(): number {
  return performance.timeOrigin + performance.now();
}

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

function send(reply: RingProcessReply): void {
  process.send?.(reply);
}

function describeError(error: unknown): { name: string; code: string; message: string; peerRank?: number } {
  if (error instanceof CollectiveError) return { name: error.name, code: error.code, message: error.message, peerRank: error.peerRank };
  if (error instanceof FmnistError) return { name: error.name, code: error.code, message: error.message };
  if (error instanceof Error) return { name: error.name, code: 'UNEXPECTED', message: error.message };
  return { name: 'Error', code: 'UNEXPECTED', message: String(error) };
}

function runAsChild(): void {
  const ring = new RingProcess();
  // Commands run one at a time, in order, as the parent sent them.
  let queue = Promise.resolve();
  process.on('message', (command: RingProcessCommand) => {
    queue = queue.then(async () => {
      try {
        const reply = await ring.handle(command);
        send(reply);
        if (reply.type === 'closed') process.disconnect();
      } catch (error) {
        send({ type: 'failed', error: describeError(error) });
      }
    });
  });
  // The parent going away (IPC closed) ends this process too.
  process.on('disconnect', () => {
    void ring.handle({ type: 'close' }).finally(() => process.exit(0));
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) runAsChild();
