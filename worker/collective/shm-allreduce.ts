/**
 * Sum all-reduce among the ranks of one host through a POSIX shared-memory segment (the
 * collective addon maps it and signals through futex counters in it). Each rank copies its
 * values into its slot, waits for all (barrier), reduces its own segment of the vector into the
 * shared result, waits for all again, and copies the result out: every byte crosses memory
 * twice, no socket, no encoding.
 *
 * ```ts
 * const group = await ShmAllReduce.join({ name: '/fmnist-run-g0', rank, worldSize, capacity });
 * await group.allReduceSum(gradient); // every rank, same length (<= capacity), same order of calls
 * await group.close();
 * ```
 *
 * The segment's name is unlinked as soon as every rank has mapped it (by rank 0), so a crash
 * later leaves nothing in /dev/shm; close() unlinks it too when joining never completed.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { AllReduceTag, AllReduceTimings } from './allreduce-operation.ts';
import { collectiveError } from './collective-status.ts';
import { roundToHalf } from './float16.ts';
import { addInto } from './float32-chunks.ts';
import { collectiveAddon, type CollectiveAddon } from './native-collective.ts';
import { checkWindow } from './ring-allreduce.ts';
import { segmentStartIn } from './ring-plan.ts';
import { processAlive } from '../../shared/process/process-alive.ts';

/** What every rank of the group passes (the same name, size and length on all). */
export interface ShmAllReduceOptions {
  /** POSIX shared-memory name, "/" then up to 250 characters without "/". */
  name: string;
  /** 0 .. worldSize-1; rank 0 creates the segment. */
  rank: number;
  worldSize: number;
  /** Most values one all-reduce may carry (float32): the segment holds one slot of this size per rank. */
  capacity: number;
  /** Longest wait for the other ranks, joining or at a barrier (ms). @default 60000 */
  timeoutMs?: number;
  /**
   * Each member's rank in the run (index: member rank), which errors name as `peerRank`: a
   * host's group in the hierarchical all-reduce is a part of the run.
   * @default the member ranks 0 .. worldSize-1
   */
  ranks?: readonly number[];
}

/** What of an all-reduce's tag the group uses: the window of a bucket, whether the thread is still computing, the values it compresses. */
export type ShmTag = Pick<AllReduceTag, 'window' | 'computing' | 'float16Values'>;

/** 'open': ready; 'failed': a wait failed, the group must be re-formed; 'closed'. */
export type ShmAllReduceState = 'open' | 'failed' | 'closed';

/** Header: barrier counter, ready flag, world size, capacity, abort flag and who set it, then one pid per rank. */
const BARRIER = 0;
const READY = 4;
const WORLD_SIZE = 8;
const CAPACITY = 12;
const ABORTED = 16;
const ABORTED_BY = 20;
const PIDS = 64;
/** How long one futex wait lasts before the peers' liveness is checked again (ms). */
const WAIT_SLICE_MS = 20;

export class ShmAllReduce {
  private stateValue: ShmAllReduceState = 'open';
  /** Barrier arrivals expected so far (N per barrier). */
  private arrivals = 0;
  private closing: Promise<void> | null = null;
  private readonly slots: Float32Array[];
  private readonly result: Float32Array;

  private constructor(
    private readonly addon: CollectiveAddon,
    private readonly segment: ArrayBuffer,
    private readonly options: Required<ShmAllReduceOptions>,
  ) {
    const { worldSize, capacity } = options;
    const base = headerBytes(worldSize);
    this.slots = Array.from({ length: worldSize }, (_, r) => new Float32Array(segment, base + r * capacity * 4, capacity));
    this.result = new Float32Array(segment, base + worldSize * capacity * 4, capacity);
  }

  /**
   * Maps the group's segment (rank 0 creates it, the others wait for it) and waits until every
   * rank has. Without the collective addon: COLLECTIVE_TRANSPORT (use the gRPC ring).
   * @throws CollectiveError COLLECTIVE_TIMEOUT, COLLECTIVE_PEER_LOST, COLLECTIVE_BAD_ARGUMENT, COLLECTIVE_TRANSPORT
   */
  static async join(options: ShmAllReduceOptions): Promise<ShmAllReduce> {
    const compiled = { timeoutMs: 60_000, ranks: Array.from({ length: options.worldSize }, (_, r) => r), ...options };
    checkOptions(compiled);
    const addon = collectiveAddon();
    if (addon === null) throw collectiveError('COLLECTIVE_TRANSPORT', 'the collective addon is not built: no shared-memory transport');
    const bytes = headerBytes(compiled.worldSize) + (compiled.worldSize + 1) * compiled.capacity * 4;
    const deadline = performance.now() + compiled.timeoutMs;
    const segment = compiled.rank === 0 ? createSegment(addon, compiled, bytes) : await openSegment(addon, compiled, bytes, deadline);
    const group = new ShmAllReduce(addon, segment, compiled);
    try {
      await group.barrier(deadline);
    } catch (error) {
      await group.close();
      throw error;
    }
    if (compiled.rank === 0) addon.shmUnlink(compiled.name);
    return group;
  }

  get state(): ShmAllReduceState {
    return this.stateValue;
  }

  /**
   * Replaces `data` by the element-wise sum over the group's ranks, bit-identical on every rank:
   * segment k of the vector (ring-plan.ts's split) is summed by rank k alone, in the fixed order
   * rank k, k+1, ..., k-1 (mod N), the gRPC ring's order, so both transports give the same bits.
   * `window`, `computing` and `float16Values` of the tag act as for the ring (allreduce-operation.ts's
   * AllReduceTag): the first `float16Values` values are summed as the ring sums them compressed,
   * each rank's rounded to binary16 and each partial sum too. Nothing travels here, so that saves
   * no bytes; it keeps a run's result independent of its transport.
   * @throws CollectiveError COLLECTIVE_TIMEOUT, COLLECTIVE_PEER_LOST, COLLECTIVE_BAD_ARGUMENT, COLLECTIVE_CLOSED
   */
  async allReduceSum(data: Float32Array, tag: ShmTag = {}): Promise<AllReduceTimings> {
    const started = performance.now();
    const marks = await this.sumToShared(data, tag);
    const allReduced = performance.now();
    data.set(this.result.subarray(0, data.length));
    const done = performance.now();
    return shmTimings({ started, ...marks, done }, done - allReduced, data.byteLength);
  }

  /**
   * The first half of an all-reduce, on every rank: the group's sum of `data` (summed as
   * allReduceSum says) lands in {@link shared}; `data` is left as it is. allReduceSum copies it
   * out at once; the hierarchical all-reduce lets the leader (rank 0) take it across hosts first.
   * @returns when every rank had written its values, and when this rank had summed its segment (performance.now())
   * @throws CollectiveError as allReduceSum
   */
  async sumToShared(data: Float32Array, tag: ShmTag = {}): Promise<{ writtenAt: number; reducedAt: number }> {
    this.assertOpen();
    if (!(data instanceof Float32Array) || data.length > this.options.capacity) {
      throw collectiveError('COLLECTIVE_BAD_ARGUMENT', `the group reduces at most ${this.options.capacity} float32 values`);
    }
    checkWindow(data.length, tag.window);
    const float16Values = tag.float16Values ?? 0;
    if (!(Number.isInteger(float16Values) && float16Values >= 0 && float16Values <= data.length)) {
      throw collectiveError('COLLECTIVE_BAD_ARGUMENT', `float16Values must be an integer from 0 to ${data.length}, got ${float16Values}`);
    }
    const deadline = performance.now() + this.options.timeoutMs;
    const slot = this.slots[this.options.rank];
    slot.set(data);
    roundToHalf(slot.subarray(0, float16Values));
    await this.barrier(deadline, tag.computing);
    const writtenAt = performance.now();
    this.reduceOwnSegment(data.length, tag.window, float16Values);
    const reducedAt = performance.now();
    await this.barrier(deadline, tag.computing);
    return { writtenAt, reducedAt };
  }

  /** The shared result's first `length` values: the group's sum after sumToShared, which the leader may replace before handOut. */
  shared(length: number): Float32Array {
    return this.result.subarray(0, length);
  }

  /**
   * The second half of a hierarchical all-reduce, on every rank: the leader (rank 0) calls it
   * once it has put the final values into {@link shared}; every other rank waits for that and
   * copies them into `data`. The wait covers the leader's all-reduce across hosts, which may take
   * that ring's whole timeout before the leader gives up (and aborts the group): so it lasts
   * twice timeoutMs.
   * @returns the time spent copying the values out (ms)
   * @throws CollectiveError COLLECTIVE_PEER_ABORTED (the leader gave up), _PEER_LOST, _TIMEOUT, _CLOSED
   */
  async handOut(data: Float32Array, tag: ShmTag = {}): Promise<number> {
    this.assertOpen();
    await this.barrier(performance.now() + 2 * this.options.timeoutMs, tag.computing);
    const copyFrom = performance.now();
    if (this.options.rank !== 0) data.set(this.result.subarray(0, data.length));
    return performance.now() - copyFrom;
  }

  /**
   * Gives up the all-reduce under way for the whole group: the other ranks' waits fail with
   * COLLECTIVE_PEER_ABORTED naming this rank, and the group is failed on every rank.
   */
  abort(): void {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'failed';
    new Int32Array(this.segment, ABORTED_BY, 1)[0] = this.options.rank;
    // Published after the rank: a rank that sees the flag reads who set it.
    this.addon.counterAdd(this.segment, ABORTED, 1);
  }

  /** Drops the mapping (unmapped once collected) and unlinks a name still there. Same promise when called again. */
  close(): Promise<void> {
    this.closing ??= Promise.resolve().then(() => {
      this.stateValue = 'closed';
      if (this.options.rank === 0) this.addon.shmUnlink(this.options.name);
    });
    return this.closing;
  }

  /**
   * Rank k reduces segment k of the first `length` values, the gRPC ring's split (ring-plan.ts),
   * windowed alike; every partial sum of the first `float16Values` is rounded to binary16, as the
   * ring sends it.
   */
  private reduceOwnSegment(length: number, window: AllReduceTag['window'], float16Values: number): void {
    const { rank, worldSize } = this.options;
    const lo = segmentStartIn(rank, length, worldSize, window);
    const hi = segmentStartIn(rank + 1, length, worldSize, window);
    const halvesEnd = Math.min(Math.max(float16Values, lo), hi);
    this.result.set(this.slots[rank].subarray(lo, hi), lo);
    for (let s = 1; s < worldSize; s += 1) {
      addInto(this.result, lo, this.slots[(rank + s) % worldSize].subarray(lo, hi));
      roundToHalf(this.result.subarray(lo, halvesEnd));
    }
  }

  /**
   * Arrives at the next barrier and waits for every rank, checking that they are alive. While
   * `computing()` says the thread still has work between its yields, each wait only polls.
   */
  private async barrier(deadline: number, computing?: () => boolean): Promise<void> {
    const { worldSize } = this.options;
    this.arrivals += worldSize;
    this.addon.counterAdd(this.segment, BARRIER, 1);
    while (!this.addon.counterWait(this.segment, BARRIER, this.arrivals, computing?.() ? 0 : WAIT_SLICE_MS)) {
      const { ranks, name } = this.options;
      const lost = this.lostPeer();
      if (lost !== null)
        this.fail(collectiveError('COLLECTIVE_PEER_LOST', `rank ${ranks[lost]} of shared-memory group ${name} is gone`, { peerRank: ranks[lost] }));
      // After a lost peer: a leader that gives up because a rank of its host died is not the cause.
      if (this.addon.counterLoad(this.segment, ABORTED) !== 0) {
        const by = ranks[new Int32Array(this.segment, ABORTED_BY, 1)[0]];
        this.fail(collectiveError('COLLECTIVE_PEER_ABORTED', `rank ${by} gave up the all-reduce of shared-memory group ${name}`, { peerRank: by }));
      }
      if (performance.now() > deadline)
        this.fail(
          collectiveError('COLLECTIVE_TIMEOUT', `shared-memory group ${this.options.name}: not every rank arrived within ${this.options.timeoutMs} ms`),
        );
      if (this.stateValue === 'closed') this.fail(collectiveError('COLLECTIVE_CLOSED', `shared-memory group ${this.options.name} was closed`));
      // Lets the process answer its IPC, timers and signals between slices.
      await yieldToEventLoop();
    }
  }

  /** A rank whose process has exited (its pid, published on joining, no longer exists). */
  private lostPeer(): number | null {
    const pids = new Int32Array(this.segment, PIDS, this.options.worldSize);
    for (let r = 0; r < pids.length; r += 1) {
      if (pids[r] !== 0 && !processAlive(pids[r])) return r;
    }
    return null;
  }

  private assertOpen(): void {
    if (this.stateValue !== 'open') throw collectiveError('COLLECTIVE_CLOSED', `shared-memory group ${this.options.name} is ${this.stateValue}`);
  }

  private fail(error: Error): never {
    if (this.stateValue === 'open') this.stateValue = 'failed';
    throw error;
  }
}

/**
 * A shared-memory all-reduce's timings from its marks (performance.now()) in the gRPC ring's
 * fields, so metrics read both alike: "sent" is what this rank wrote into the segment,
 * "received" what it copied out of it.
 */
export function shmTimings(marks: { started: number; writtenAt: number; reducedAt: number; done: number }, copyOutMs: number, bytes: number): AllReduceTimings {
  const { started, writtenAt, reducedAt, done } = marks;
  return {
    totalMs: done - started,
    firstChunkMs: writtenAt - started,
    reduceScatterMs: reducedAt - started,
    allGatherMs: done - reducedAt,
    acknowledgeMs: 0,
    applyMs: reducedAt - writtenAt + copyOutMs,
    bytesSent: bytes,
    bytesReceived: bytes,
    chunksSent: 1,
    chunksReceived: 1,
  };
}

function headerBytes(worldSize: number): number {
  return Math.ceil((PIDS + 4 * worldSize) / 64) * 64;
}

function checkOptions(o: Required<ShmAllReduceOptions>): void {
  const valid =
    /^\/[^/]{1,250}$/.test(o.name) &&
    Number.isInteger(o.worldSize) &&
    o.worldSize >= 1 &&
    Number.isInteger(o.rank) &&
    o.rank >= 0 &&
    o.rank < o.worldSize &&
    Number.isInteger(o.capacity) &&
    o.capacity >= 1 &&
    o.capacity <= 0x7fff_ffff &&
    o.timeoutMs > 0 &&
    Array.isArray(o.ranks) &&
    o.ranks.length === o.worldSize &&
    o.ranks.every((r) => Number.isInteger(r) && r >= 0);
  if (!valid) throw collectiveError('COLLECTIVE_BAD_ARGUMENT', `bad shared-memory group options ${JSON.stringify(o)}`);
}

function createSegment(addon: CollectiveAddon, o: Required<ShmAllReduceOptions>, bytes: number): ArrayBuffer {
  let segment: ArrayBuffer | null;
  try {
    segment = addon.shmMap(o.name, bytes, true);
  } catch (error) {
    throw collectiveError('COLLECTIVE_TRANSPORT', `cannot create shared memory ${o.name}`, { cause: error });
  }
  const header = new Int32Array(segment!, 0, PIDS / 4 + o.worldSize);
  header[WORLD_SIZE / 4] = o.worldSize;
  header[CAPACITY / 4] = o.capacity;
  header[PIDS / 4] = process.pid;
  // Published last: a rank that sees it set finds the header filled in.
  addon.counterAdd(segment!, READY, 1);
  return segment!;
}

async function openSegment(addon: CollectiveAddon, o: Required<ShmAllReduceOptions>, bytes: number, deadline: number): Promise<ArrayBuffer> {
  for (;;) {
    const segment = addon.shmMap(o.name, bytes, false);
    if (segment !== null && addon.counterLoad(segment, READY) === 1) {
      const header = new Int32Array(segment, 0, PIDS / 4 + o.worldSize);
      if (header[WORLD_SIZE / 4] !== o.worldSize || header[CAPACITY / 4] !== o.capacity) {
        throw collectiveError(
          'COLLECTIVE_PEER_MISMATCH',
          `${o.name} holds ${header[WORLD_SIZE / 4]} ranks of ${header[CAPACITY / 4]} values, expected ${o.worldSize} of ${o.capacity}`,
        );
      }
      header[PIDS / 4 + o.rank] = process.pid;
      return segment;
    }
    if (performance.now() > deadline) throw collectiveError('COLLECTIVE_TIMEOUT', `shared memory ${o.name} was not created within ${o.timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, WAIT_SLICE_MS));
  }
}
