import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

/**
 * True when a Redis server at `url` answers PING within `timeoutMs` (default 500 ms). Uses a
 * throw-away connection that never retries, so a dead address costs at most the timeout.
 */
export async function pingRedis(url: string, timeoutMs = 500): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  const timer = sleep(timeoutMs, false as const, { ref: false });
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
    if (await pingRedis(url, Math.max(100, Math.min(1_000, left)))) return true;
    if (Date.now() + intervalMs >= deadline) return false;
    await sleep(intervalMs);
  }
}
