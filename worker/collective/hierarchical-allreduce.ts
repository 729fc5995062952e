/**
 * Sum all-reduce over ranks on several hosts, some holding more than one rank (the hierarchical
 * all-reduce of Horovod and NCCL): the ranks of each host sum through that host's shared memory
 * (shm-allreduce.ts), the hosts' leaders sum those host sums over a gRPC ring of leaders only
 * (ring-allreduce.ts, connected with the leaders as its members), and each leader hands the
 * total back to its host's ranks through the same shared memory. A rank alone on its host takes
 * part in the leaders' ring directly.
 *
 * ```ts
 * const sum = new HierarchicalAllReduce(hostGroup, isLeader ? ring : null);
 * await sum.allReduceSum(gradient, tag); // every rank of every host, same length and order
 * ```
 *
 * Where the order of the sum is fixed: by the placement alone (host-placement.ts). A host's sum
 * is its group's (its ranks' values in ring order among them), the total is the leaders' ring's
 * sum of the host sums (in ring order among the leaders), and every rank copies the bits its
 * leader got from that ring, which are the same on every leader. So the result is bit-identical
 * on every rank and from run to run for one placement; it is not the flat ring's bits, since the
 * additions are grouped by host. A bucket's window (tag.window) goes to both parts, so a bucketed
 * all-reduce sums every value in the order the whole vector would: the same bits.
 */
import type { AllReduceTag, AllReduceTimings } from './allreduce-operation.ts';
import type { RingMember } from './ring-allreduce.ts';
import { shmTimings, type ShmAllReduce } from './shm-allreduce.ts';

/** What the hierarchical all-reduce needs of the leaders' ring. */
export type LeadersRing = Pick<RingMember, 'allReduceSum' | 'close'>;

export class HierarchicalAllReduce {
  /**
   * @param host this host's shared-memory group (its rank 0 is the leader), or null when this
   *   rank is alone on its host
   * @param leaders the ring among the hosts' leaders on a leader, null on the other ranks; a
   *   leader with a host group closes it here when an all-reduce fails (the ring must be
   *   re-formed after a failure anyway, and closing it is what tells the other leaders at once
   *   when the failure was in the host's part, which the ring never saw)
   */
  constructor(
    private readonly host: ShmAllReduce | null,
    private readonly leaders: LeadersRing | null,
  ) {}

  /**
   * Replaces `data` by the sum over every rank, as the class comment says.
   * @throws CollectiveError of either transport; a rank whose leader gave up gets COLLECTIVE_PEER_ABORTED naming it
   */
  allReduceSum(data: Float32Array, tag: AllReduceTag): Promise<AllReduceTimings> {
    if (this.host === null) return this.leaders!.allReduceSum(data, tag);
    if (this.leaders === null) return this.follow(this.host, data, tag);
    return this.lead(this.host, this.leaders, data, tag);
  }

  /** A rank that does not lead: its host's sum, then the leader's total. */
  private async follow(host: ShmAllReduce, data: Float32Array, tag: AllReduceTag): Promise<AllReduceTimings> {
    const started = performance.now();
    const marks = await host.sumToShared(data, tag);
    const copyOutMs = await host.handOut(data, tag);
    return shmTimings({ started, ...marks, done: performance.now() }, copyOutMs, data.byteLength);
  }

  /** A host's leader: its host's sum, the leaders' ring over the host sums, the total handed back. */
  private async lead(host: ShmAllReduce, leaders: LeadersRing, data: Float32Array, tag: AllReduceTag): Promise<AllReduceTimings> {
    const started = performance.now();
    let local: { writtenAt: number; reducedAt: number };
    let across: AllReduceTimings;
    try {
      local = await host.sumToShared(data, tag);
      const shared = host.shared(data.length);
      data.set(shared);
      across = await leaders.allReduceSum(data, tag);
      shared.set(data);
      await host.handOut(data, tag);
    } catch (error) {
      // The host's ranks wait for this leader and the other leaders for its stream (now or at
      // the next all-reduce): both are told now rather than at their timeouts.
      host.abort();
      await leaders.close();
      throw error;
    }
    const done = performance.now();
    // Reduce-scatter: until the host's sum, then the leaders' reduce-scatter; the rest gathers.
    const reduceScatterMs = local.reducedAt - started + across.reduceScatterMs;
    return {
      totalMs: done - started,
      firstChunkMs: local.writtenAt - started,
      reduceScatterMs,
      allGatherMs: done - started - reduceScatterMs,
      acknowledgeMs: across.acknowledgeMs,
      applyMs: local.reducedAt - local.writtenAt + across.applyMs,
      // The segment's bytes (as ShmAllReduce counts them) and the leaders' ring's.
      bytesSent: data.byteLength + across.bytesSent,
      bytesReceived: data.byteLength + across.bytesReceived,
      chunksSent: 1 + across.chunksSent,
      chunksReceived: 1 + across.chunksReceived,
    };
  }
}
