/**
 * A real redis-server per test file, on a free port with its own temporary directory, whatever
 * REDIS_URL says; and a unique key prefix per test so tests sharing the server never meet.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisTarget } from '../../shared/config/redis-options.ts';
import { connectRedis } from '../../shared/redis/connect-redis.ts';
import { RedisServerProcess, type RedisServerOptions } from '../../shared/redis/redis-server-process.ts';

/** A server owned by one test file. */
export interface TestRedis {
  /** `redis://127.0.0.1:<port>` (`rediss://` with TLS), without credentials. */
  url: string;
  /** The URL with the server's password and TLS files: what a client needs to get in. */
  target: RedisTarget;
  port: number;
  /** The server process (stop / restart it directly for outage tests). */
  server: RedisServerProcess;
  /** A new client (via connectRedis, with `target`'s credentials), closed by `close()`. Errors are kept, not printed. */
  connect(role?: string): Redis;
  /** Connection errors seen by clients made with `connect`, in order. */
  errors: Error[];
  /**
   * Stops the server and starts it again on the same port and directory. With `persist` (the
   * default) a graceful stop keeps the data; `mode: 'kill'` is a crash.
   */
  restart(options?: { mode?: 'graceful' | 'kill'; downMs?: number }): Promise<void>;
  /** Disconnects every client and stops the server, removing its directory. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a redis-server for a test file.
 * @param options.persist keep data across `restart()` (append-only file). @default true
 * @param options.password, options.users, options.tls a server that wants credentials, or TLS (see RedisServerOptions)
 */
export async function startTestRedis(options: Pick<RedisServerOptions, 'persist' | 'password' | 'users' | 'tls'> = {}): Promise<TestRedis> {
  const server = await RedisServerProcess.start({ ...options, persist: options.persist ?? true });
  const clients: Redis[] = [];
  const errors: Error[] = [];
  let closing: Promise<void> | undefined;
  return {
    url: server.url,
    target: server.target,
    port: server.port,
    server,
    errors,
    connect(role = 'test') {
      const client = connectRedis(server.target, role, { onError: (error) => errors.push(error) });
      clients.push(client);
      return client;
    },
    restart: (restartOptions) => server.restart(restartOptions),
    close() {
      closing ??= (async () => {
        for (const client of clients) client.disconnect();
        await server.close();
      })();
      return closing;
    },
  };
}

/** A key prefix no other test uses: `t-<label>-<8 hex>`. */
export function uniquePrefix(label = 'test'): string {
  return `t-${label.replace(/\s+/g, '-')}-${randomUUID().slice(0, 8)}`;
}
