/**
 * The registry of live worker processes: each worker keeps one Redis key alive (a heartbeat with
 * a TTL) that says where its metrics are served and which run it trains, and the coordinator
 * lists the live ones (Prometheus service discovery, workers per run). A worker that stops
 * deletes its key; one that dies leaves it to expire.
 *
 * The beat is refreshed by a timer on the worker's main thread. A synchronous training step or
 * evaluation blocks that thread (seconds per step, a minute or more for a CPU evaluation of the
 * full test set at 96x96), so the TTL is minutes, far above any block: a blocked worker must not
 * vanish from discovery. The price is that a killed worker stays listed (and shows as down in
 * Prometheus) until its TTL runs out. (A worker_threads refresher would not block, but tsx does
 * not load TypeScript in worker threads under Node 20.)
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../redis/keys.ts';

/** The run a worker is training, as its beat says. */
export interface WorkerAssignment {
  runId: string;
  generation: number;
  rank: number;
  worldSize: number;
}

/** What a worker's beat says about it. */
export interface WorkerBeat {
  /** Unique per process: `<host>/<pid>/<random>`. */
  workerId: string;
  /** The worker's `--name` (for logs and target labels). */
  name: string;
  host: string;
  pid: number;
  /** `host:port` Prometheus scrapes for `/metrics`; absent when the worker serves no metrics. */
  metricsAddress?: string;
  state: 'idle' | 'training' | 'draining';
  /** The run it trains now, if any. */
  assignment?: WorkerAssignment;
  /** When the beat was written, in ms since the epoch. */
  beatAt: number;
}

/** A beat less what the heartbeat fills in itself. */
export type WorkerStatus = Omit<WorkerBeat, 'workerId' | 'host' | 'pid' | 'beatAt'>;

/** A registered worker's key lives this long after its last beat: far above a blocked step. */
export const WORKER_BEAT_TTL_MS = 5 * 60_000;
/** Time between beats. */
export const WORKER_BEAT_INTERVAL_MS = 5_000;

/** Options of {@link startHeartbeat}. */
export interface HeartbeatOptions {
  /** @default `<hostname>/<pid>/<6 random hex digits>` */
  workerId?: string;
  /** Read at every beat, so that the registry follows the worker's state. */
  status(): WorkerStatus;
  /** @default WORKER_BEAT_TTL_MS */
  ttlMs?: number;
  /** @default WORKER_BEAT_INTERVAL_MS */
  intervalMs?: number;
  /** A beat that could not be written (the next one is tried anyway). @default ignore */
  onError?: (error: unknown) => void;
}

/** A running heartbeat. */
export interface Heartbeat {
  readonly workerId: string;
  /** Writes a beat now (e.g. right after the worker took a job); resolves once it is in Redis. */
  beat(): Promise<void>;
  /** Stops beating and deletes the key, so the worker is no longer listed. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts beating: a first beat at once (in the background: a worker may start before Redis),
 * then one every `intervalMs` on an unref'ed timer, until stopped. Commands go out in call
 * order on the one connection, so no beat can land after the deletion of `stop()`.
 */
export function startHeartbeat(redis: Redis, keys: RedisKeys, options: HeartbeatOptions): Heartbeat {
  const workerId = options.workerId ?? `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
  const ttlMs = options.ttlMs ?? WORKER_BEAT_TTL_MS;
  const onError = options.onError ?? (() => {});
  let stopping: Promise<void> | undefined;
  const beat = async () => {
    if (stopping !== undefined) return;
    const value: WorkerBeat = { ...options.status(), workerId, host: hostname(), pid: process.pid, beatAt: Date.now() };
    await redis.multi().set(keys.workerBeat(workerId), JSON.stringify(value), 'PX', ttlMs).sadd(keys.workerIndex(), workerId).exec();
  };
  beat().catch(onError);
  const timer = setInterval(() => void beat().catch(onError), options.intervalMs ?? WORKER_BEAT_INTERVAL_MS);
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    stopping ??= redis
      .multi()
      .del(keys.workerBeat(workerId))
      .srem(keys.workerIndex(), workerId)
      .exec()
      .then(() => undefined);
    return stopping;
  };
  return { workerId, beat, stop };
}

/** Which live workers {@link listLiveWorkers} returns. */
export interface WorkerFilter {
  /** Only those training this run. */
  runId?: string;
  /** Only those of this generation of it. */
  generation?: number;
}

/**
 * Workers whose beat has not expired, ordered by run, then rank, then id. Ids whose beat
 * expired are dropped from the index on the way.
 */
export async function listLiveWorkers(redis: Redis, keys: RedisKeys, filter: WorkerFilter = {}): Promise<WorkerBeat[]> {
  const ids = await redis.smembers(keys.workerIndex());
  if (ids.length === 0) return [];
  const values = await redis.mget(ids.map((id) => keys.workerBeat(id)));
  const dead = ids.filter((_, i) => values[i] === null);
  if (dead.length > 0) await redis.srem(keys.workerIndex(), ...dead);
  return values
    .filter((value): value is string => value !== null)
    .map((value) => JSON.parse(value) as WorkerBeat)
    .filter((beat) => filter.runId === undefined || beat.assignment?.runId === filter.runId)
    .filter((beat) => filter.generation === undefined || beat.assignment?.generation === filter.generation)
    .sort(byRunRankId);
}

function byRunRankId(a: WorkerBeat, b: WorkerBeat): number {
  const run = (a.assignment?.runId ?? '').localeCompare(b.assignment?.runId ?? '');
  return run || (a.assignment?.rank ?? Infinity) - (b.assignment?.rank ?? Infinity) || a.workerId.localeCompare(b.workerId);
}
