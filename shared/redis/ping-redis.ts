import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { redisTargetOf, type RedisTarget } from '../config/redis-options.ts';
import { permanentRedisError, type RedisError } from './redis-error.ts';

/**
 * True when a Redis server at `url` answers PING within `timeoutMs` (default 500 ms). Uses a
 * throw-away connection that never retries, so a dead address costs at most the timeout.
 *
 * The verdict "no answer" waits for one more pass of the event loop: a process that was not
 * scheduled for a while (a loaded machine) wakes up to find both its timer expired and the
 * answer waiting on the socket, and timers run before I/O.
 *
 * A server that answers but refuses our credentials, or a failed TLS handshake, is not "no
 * answer": waiting would not change it, so that throws RedisError REDIS_AUTH or REDIS_TLS.
 */
export async function pingRedis(endpoint: string | RedisTarget, timeoutMs = 500): Promise<boolean> {
  const target = redisTargetOf(endpoint);
  const client = new Redis(target.url, {
    ...target.redisOptions,
    lazyConnect: true,
    // Our own timer decides; ioredis's would have the same race with the connect event.
    connectTimeout: 2 * timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let permanent: RedisError | undefined;
  const classify = (error: Error) => (permanent ??= permanentRedisError(error, target.displayUrl));
  client.on('error', classify);
  const timer = new Promise<false>((resolve) => setTimeout(() => setImmediate(resolve, false), timeoutMs).unref());
  let answered: boolean;
  try {
    answered = (await Promise.race([client.connect().then(() => client.ping()), timer])) === 'PONG';
  } catch (error) {
    classify(error as Error);
    answered = false;
  } finally {
    client.disconnect();
  }
  if (!answered && permanent !== undefined) throw permanent;
  return answered;
}

/**
 * True once Redis at `url` answers PING, trying every `intervalMs` until `timeoutMs` has passed:
 * a server that is restarting (a crash, then its append-only file loading) gets that long.
 * Throws at once, as {@link pingRedis} does, when the server refuses our credentials or TLS.
 */
export async function redisAnswersWithin(endpoint: string | RedisTarget, timeoutMs: number, intervalMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    // One attempt may take all the time left: a refused connection fails at once anyway, and
    // short attempts on a starved process would each lose to their own timer.
    if (await pingRedis(endpoint, Math.max(100, left))) return true;
    if (Date.now() + intervalMs >= deadline) return false;
    await sleep(intervalMs);
  }
}

/** How long {@link refuseBadCredentials} waits for an answer, in ms. */
const CREDENTIALS_CHECK_MS = 2_000;

/**
 * For processes that keep retrying Redis (workers, `serve`): one PING at start-up, so that
 * wrong credentials or TLS settings end the process with REDIS_AUTH or REDIS_TLS instead of an
 * endless retry. No answer passes: Redis may start after them.
 */
export async function refuseBadCredentials(endpoint: string | RedisTarget): Promise<void> {
  await pingRedis(endpoint, CREDENTIALS_CHECK_MS);
}
