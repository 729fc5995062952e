import { Redis, type RedisOptions } from 'ioredis';
import { redisTargetOf, type RedisTarget } from '../config/redis-options.ts';

/** What a process uses a connection for; it ends up in `CLIENT LIST` as the connection name. */
export type RedisRole = string;

/** Options of {@link connectRedis}. */
export interface ConnectRedisOptions {
  /**
   * Called with every connection error. ioredis reconnects by itself, so these are reports,
   * not failures. Default: one line on stderr, at most once per 10 s per connection.
   */
  onError?: (error: Error) => void;
  /** Extra ioredis options; they override ours except `maxRetriesPerRequest`. */
  redisOptions?: RedisOptions;
}

/** Longest wait between two reconnection attempts, in ms. */
const MAX_RECONNECT_DELAY_MS = 2_000;
/** Shortest gap between two default error lines of one connection, in ms. */
const ERROR_REPORT_INTERVAL_MS = 10_000;

/**
 * An ioredis client set up the way BullMQ needs it: `maxRetriesPerRequest: null` (a command waits
 * through a reconnect instead of failing), a ready check, endless reconnects with a capped
 * back-off, a connection name `fmnist:<role>:<pid>` and an 'error' handler so that errors never
 * go unhandled. Connects in the background; commands issued before it is ready are queued.
 * `endpoint` is a compiled target (its credentials and TLS files), or a bare URL.
 */
export function connectRedis(endpoint: string | RedisTarget, role: RedisRole, options: ConnectRedisOptions = {}): Redis {
  const target = redisTargetOf(endpoint);
  const client = new Redis(target.url, {
    ...target.redisOptions,
    connectionName: `fmnist:${role}:${process.pid}`,
    enableReadyCheck: true,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), MAX_RECONNECT_DELAY_MS),
    ...options.redisOptions,
    maxRetriesPerRequest: null,
  });
  client.on('error', options.onError ?? rateLimitedStderr(role));
  return client;
}

function rateLimitedStderr(role: RedisRole): (error: Error) => void {
  let lastAt = 0;
  return (error) => {
    const now = Date.now();
    if (now - lastAt < ERROR_REPORT_INTERVAL_MS) return;
    lastAt = now;
    process.stderr.write(`redis (${role}): ${error.message}\n`);
  };
}
