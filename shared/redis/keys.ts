/**
 * Every Redis key this project writes is named here, under one prefix, so that a test can give
 * each case its own prefix and so that two deployments can share one Redis server.
 */

/** The prefix used when none is given. */
export const DEFAULT_KEY_PREFIX = 'fmnist';

/** Key names for one prefix. Pure string building: nothing here talks to Redis. */
export class RedisKeys {
  /**
   * @param prefix first segment of every key; must be non-empty and free of whitespace.
   * @default 'fmnist'
   */
  constructor(readonly prefix: string = DEFAULT_KEY_PREFIX) {
    if (prefix === '' || /\s/.test(prefix)) throw new TypeError(`bad Redis key prefix ${JSON.stringify(prefix)}`);
  }

  /** Sorted set of run ids scored by creation time (ms since epoch). */
  runIndex(): string {
    return `${this.prefix}:runs`;
  }

  /** Hash holding one run's config, state, generation, progress and timestamps. */
  run(runId: string): string {
    return `${this.prefix}:run:${runId}`;
  }

  /** Hash of per-epoch history entries of one run, field = epoch number. */
  runHistory(runId: string): string {
    return `${this.prefix}:run:${runId}:history`;
  }

  /**
   * Hash of one run's step samples (shared/run/step-samples.ts), field = global step of the
   * window's last step; at most MAX_STEP_SAMPLES + 1 fields.
   */
  runSteps(runId: string): string {
    return `${this.prefix}:run:${runId}:steps`;
  }

  /** List of one run's automatic restarts (JSON, oldest first: shared/run/restart-policy.ts). */
  runRestarts(runId: string): string {
    return `${this.prefix}:run:${runId}:restarts`;
  }

  /** Stream of one run's events (state changes, progress, epochs), for `status --follow`. */
  runEvents(runId: string): string {
    return `${this.prefix}:events:${runId}`;
  }

  /** JSON manifest of one dataset version's shards. */
  datasetManifest(version: string): string {
    return `${this.prefix}:dataset:${version}:manifest`;
  }

  /** Binary value of one shard of one dataset version. */
  datasetShard(version: string, index: number): string {
    return `${this.prefix}:dataset:${version}:shard:${index}`;
  }

  /** Short-lived lock held while one process writes a dataset version. */
  datasetLock(version: string): string {
    return `${this.prefix}:dataset:${version}:lock`;
  }

  /** Hash rank -> member JSON of one rendezvous (run, generation). */
  rendezvousMembers(runId: string, generation: number): string {
    return `${this.prefix}:rdv:${runId}:${generation}:members`;
  }

  /** Hash member identity -> rank of one rendezvous, so that a re-join gets its old rank. */
  rendezvousIdentities(runId: string, generation: number): string {
    return `${this.prefix}:rdv:${runId}:${generation}:ids`;
  }

  /**
   * One rank's liveness beat in one run generation (shared/run/liveness.ts), written by a
   * thread its compute cannot block; it expires `heartbeatTimeoutMs` after the last beat.
   */
  liveness(runId: string, generation: number, rank: number): string {
    return `${this.prefix}:live:${runId}:${generation}:${rank}`;
  }

  /** Set of the ids of registered workers (some may have expired: their beat key is gone). */
  workerIndex(): string {
    return `${this.prefix}:workers`;
  }

  /** One worker's registry entry (shared/run/worker-registry.ts); it expires when the worker stops beating. */
  workerBeat(workerId: string): string {
    return `${this.prefix}:worker:${workerId}`;
  }

  /** The `prefix` option to give BullMQ queues and workers so their keys live under ours. */
  queuePrefix(): string {
    return `${this.prefix}:bull`;
  }
}
