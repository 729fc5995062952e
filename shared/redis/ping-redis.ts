import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

/**
 * True when a Redis server at `url` answers PING within `timeoutMs` (default 500 ms). Uses a
 * throw-away connection that never retries, so a dead address costs at most the timeout.
 *
 * The verdict "no answer" waits for one more pass of the event loop: a process that was not
 * scheduled for a while (a loaded machine) wakes up to find both its timer expired and the
 * answer waiting on the socket, and timers run before I/O.
 */
export async function pingRedis(url: string, timeoutMs = 500): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    // Our own timer decides; ioredis's would have the same race with the connect event.
    connectTimeout: 2 * timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  const timer = new Promise<false>((resolve) => setTimeout(() => setImmediate(resolve, false), timeoutMs).unref());
  try {
    const answer = Promise.race([client.connect().then(() => client.ping()), timer]);
    return (await answer) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/**
 * True once Redis at `url` answers PING, trying every `intervalMs` until `timeoutMs` has passed:
 * a server that is restarting (a crash, then its append-only file loading) gets that long.
 */
export async function redisAnswersWithin(url: string, timeoutMs: number, intervalMs = 250): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    // One attempt may take all the time left: a refused connection fails at once anyway, and
    // short attempts on a starved process would each lose to their own timer.
    if (await pingRedis(url, Math.max(100, left))) return true;
    if (Date.now() + intervalMs >= deadline) return false;
    await sleep(intervalMs);
  }
}
