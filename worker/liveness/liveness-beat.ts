import { hostname } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Redis } from 'ioredis';
import type { RedisTarget } from '../../shared/config/redis-options.ts';
import type { RedisKeys } from '../../shared/redis/keys.ts';
import { beatIntervalMs, type LivenessBeat as Beat, type RankLiveness } from '../../shared/run/liveness.ts';

export type LivenessBeatState = 'idle' | 'beating' | 'closed';

/**
 * A worker process's liveness beat (shared/run/liveness.ts): one worker_threads thread
 * (beat-thread.mjs, with its own Redis connection) keeps the key of the rank the current job
 * holds alive, whatever the main thread's synchronous compute is doing.
 */
export class LivenessBeat {
  state: LivenessBeatState = 'idle';
  private readonly thread: Worker;
  /** Resolves when the thread has ended (closed, or failed): no answer is waited for after that. */
  private readonly exited: Promise<void>;
  private closing?: Promise<void>;

  constructor(redis: RedisTarget, log: (line: string) => void = () => {}) {
    // No --import tsx in the thread (execArgv []): it is plain JavaScript. It connects as every
    // other connection does: the URL with the credentials and TLS material compiled once.
    const workerData = { url: redis.url, options: redis.redisOptions };
    this.thread = new Worker(new URL('./beat-thread.mjs', import.meta.url), { workerData, execArgv: [] });
    this.thread.on('error', (error) => log(`liveness thread failed: ${error.message}`));
    this.exited = new Promise((resolve) => this.thread.once('exit', () => resolve()));
    // The process exits when its work is done, whatever the thread is doing.
    this.thread.unref();
  }

  /**
   * Starts beating for `assignment`: the first beat is written here, on the caller's connection,
   * before this resolves (so the key exists before the rank joins its rendezvous); the thread
   * writes every later one.
   */
  async assign(redis: Redis, keys: RedisKeys, assignment: RankLiveness): Promise<void> {
    const key = keys.liveness(assignment.runId, assignment.generation, assignment.rank);
    const value = beatValue('beating');
    await redis.set(key, value, 'PX', assignment.timeoutMs);
    this.thread.postMessage({ type: 'assign', key, value, ttlMs: assignment.timeoutMs, intervalMs: beatIntervalMs(assignment.timeoutMs) });
    this.state = 'beating';
  }

  /** Stops beating and marks the rank `left`; resolves once written (or failed to be). */
  leave(): Promise<void> {
    if (this.state !== 'beating') return Promise.resolve();
    this.state = 'idle';
    const left = new Promise<void>((resolve) => this.thread.once('message', () => resolve()));
    this.thread.postMessage({ type: 'leave', value: beatValue('left') });
    return Promise.race([left, this.exited]);
  }

  /** Ends the thread (it closes its connection first). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (() => {
      this.state = 'closed';
      this.thread.postMessage({ type: 'close' });
      return this.exited;
    })();
    return this.closing;
  }
}

function beatValue(state: Beat['state']): string {
  const beat: Beat = { state, pid: process.pid, host: hostname() };
  return JSON.stringify(beat);
}
