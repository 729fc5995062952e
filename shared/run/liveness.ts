/**
 * Liveness of the ranks of a run generation: each rank keeps a Redis key alive
 * (`live:<run>:<generation>:<rank>`, expiring `heartbeatTimeoutMs` after its last beat) from a
 * worker_threads thread, which a synchronous training step does not block but a stopped, frozen
 * or dead process does stop. Its ring neighbours (worker/liveness/peer-watch.ts) and the
 * coordinator (a run whose ranks all vanished) read the keys.
 *
 * Why a Redis key and not a ping between ring neighbours: every rank and the coordinator already
 * talk to Redis, the key's TTL is counted by the server (no clock to agree on), one read covers
 * every rank of a generation, and the coordinator needs the same fact after every worker is gone
 * (there is no neighbour left to ask then). The price: while Redis is down nobody can tell,
 * so a reader that could not read waits one more timeout before it believes a missing key.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../redis/keys.ts';

/** {@link RunConfig.heartbeatTimeoutMs}'s default: far above a Redis hiccup, far below the 10-minute collective timeout. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 30_000;

/** Beats per timeout: a key outlives a few lost or late beats before it expires. */
const BEATS_PER_TIMEOUT = 5;

/** Time between two beats of a rank, in ms. */
export function beatIntervalMs(heartbeatTimeoutMs: number): number {
  return Math.max(50, Math.floor(heartbeatTimeoutMs / BEATS_PER_TIMEOUT));
}

/** One rank of one run generation, and the run's heartbeat timeout: what a beat or a watch is about. */
export interface RankLiveness {
  runId: string;
  generation: number;
  rank: number;
  /** The run's heartbeat timeout: a key expires this long after its last beat, in ms. */
  timeoutMs: number;
}

/**
 * What a rank's key says: `beating` while its job runs, `left` once the job ended (for one more
 * timeout), so that a peer still finishing its last all-reduce does not take a clean end for a
 * hang. Readers only test whether the key is there.
 */
export interface LivenessBeat {
  state: 'beating' | 'left';
  pid: number;
  host: string;
}

/** The generation's ranks among `ranks` whose key is gone (no beat, no leave, within the timeout), in rank order. */
export async function silentRanks(redis: Redis, keys: RedisKeys, runId: string, generation: number, ranks: readonly number[]): Promise<number[]> {
  if (ranks.length === 0) return [];
  const values = await redis.mget(ranks.map((rank) => keys.liveness(runId, generation, rank)));
  return ranks.filter((_, i) => values[i] === null);
}
