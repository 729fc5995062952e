import type { Redis } from 'ioredis';
import { CollectiveError } from '../../shared/errors.ts';
import type { RedisKeys } from '../../shared/redis/keys.ts';
import { beatIntervalMs, silentRanks, type RankLiveness } from '../../shared/run/liveness.ts';
import type { AllReduceTag, AllReduceTimings } from '../collective/ring-allreduce.ts';
import type { SumAllReduce } from '../ring-collective.ts';

/** `rank` is this rank: every other rank of the generation is watched. */
export interface PeerWatchOptions extends RankLiveness {
  redis: Redis;
  keys: RedisKeys;
  worldSize: number;
}

export type PeerWatchState = 'watching' | 'tripped' | 'stopped';

/**
 * Watches the liveness keys of a rank's peers (shared/run/liveness.ts) while a job trains, and
 * cancels the all-reduce it guards as soon as one is gone: a peer that is stopped or frozen
 * holds its ring neighbours only for the heartbeat timeout, not the collective's. The check
 * runs on the main thread, which is free exactly while this rank waits in an all-reduce.
 */
export class PeerWatch {
  state: PeerWatchState = 'watching';
  /** Rejects with CollectiveError COLLECTIVE_PEER_HUNG (peerRank: the silent rank) once one is found. */
  readonly tripped: Promise<never>;
  private trip!: (error: CollectiveError) => void;
  private readonly timer: NodeJS.Timeout;
  private readonly peers: number[];
  /** When a read of the keys last failed (ms, performance.now()). */
  private lastReadFailure = Number.NEGATIVE_INFINITY;
  private checking = false;

  constructor(private readonly options: PeerWatchOptions) {
    this.peers = Array.from({ length: options.worldSize }, (_, r) => r).filter((r) => r !== options.rank);
    this.tripped = new Promise<never>((_, reject) => (this.trip = reject));
    // Nobody may be awaiting it when it trips (between all-reduces); the next guarded call sees it.
    this.tripped.catch(() => {});
    this.timer = setInterval(() => void this.check(), beatIntervalMs(options.timeoutMs));
    this.timer.unref();
  }

  /** `sum`, whose all-reduces reject with the watch's error once it trips (the call's own outcome is then dropped). */
  guard(sum: SumAllReduce): SumAllReduce {
    return {
      allReduceSum: (data: Float32Array, tag: AllReduceTag): Promise<AllReduceTimings> => {
        const operation = sum.allReduceSum(data, tag);
        // Closing the transport after a trip ends the abandoned call with an error nobody needs.
        operation.catch(() => {});
        return Promise.race([operation, this.tripped]);
      },
    };
  }

  stop(): void {
    if (this.state === 'watching') this.state = 'stopped';
    clearInterval(this.timer);
  }

  private async check(): Promise<void> {
    if (this.checking || this.state !== 'watching') return;
    this.checking = true;
    try {
      const { redis, keys, runId, generation, timeoutMs } = this.options;
      const started = performance.now();
      const silent = await silentRanks(redis, keys, runId, generation, this.peers);
      const answered = performance.now();
      // ioredis queues commands while Redis is away and sends them once it is back: a read that
      // took longer than a beat waited out an outage (or a stall) in which the peers could not
      // beat either, as much as a read that failed.
      if (answered - started > beatIntervalMs(timeoutMs)) this.lastReadFailure = answered;
      // After Redis was unreachable, a key may have expired only because its owner could not
      // write it either: believe a missing key once a whole timeout has passed since.
      if (silent.length > 0 && answered - this.lastReadFailure >= timeoutMs) this.hung(silent[0]);
    } catch {
      this.lastReadFailure = performance.now();
    } finally {
      this.checking = false;
    }
  }

  private hung(peerRank: number): void {
    if (this.state !== 'watching') return;
    this.state = 'tripped';
    clearInterval(this.timer);
    const { runId, generation, timeoutMs } = this.options;
    this.trip(
      new CollectiveError('COLLECTIVE_PEER_HUNG', `rank ${peerRank} of run ${runId} generation ${generation} sent no liveness beat for ${timeoutMs} ms`, {
        peerRank,
      }),
    );
  }
}
