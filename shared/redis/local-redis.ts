import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { compileRedisTarget, redisTargetOf, type RedisCredentials, type RedisTarget } from '../config/redis-options.ts';
import { RedisError } from './redis-error.ts';
import { pingRedis, redisAnswersWithin } from './ping-redis.ts';
import { RedisServerProcess } from './redis-server-process.ts';
import { processAlive } from '../process/process-alive.ts';

export { connectRedis, type ConnectRedisOptions, type RedisRole } from './connect-redis.ts';

/** Options of {@link ensureRedis}. */
export interface EnsureRedisOptions {
  /** Use this server and nothing else. @default env.REDIS_URL */
  url?: string;
  /** Environment to read REDIS_URL from. @default process.env */
  env?: NodeJS.ProcessEnv;
  /**
   * ACL user, password and TLS files for the given URL and the probe (shared/config/redis-options.ts).
   * A server we start ourselves listens on loopback only, without a password.
   * @default none
   */
  credentials?: RedisCredentials;
  /**
   * Where to look for an already running server when no URL is given; null never looks, so the
   * server is always the data directory's own. @default 'redis://127.0.0.1:6379'
   */
  probeUrl?: string | null;
  /** How long the probe waits for PONG, in ms (a miss only means: use the data directory's own). @default 500 */
  probeTimeoutMs?: number;
  /**
   * How long a server that should be there (a given URL, or the one the data directory's marker
   * names) has to answer PING, retrying, in ms: a loaded machine, or a server loading its
   * append-only file, may be slow, and taking it for dead would fail the command or start a
   * second server on the same files. @default 5000
   */
  answerTimeoutMs?: number;
  /**
   * Data directory for a server we start. When given, the server persists to an append-only
   * file there and the directory is kept, so runs stay resumable after this process exits; when
   * omitted, a temporary directory with no persistence is used and removed on close.
   */
  dataDir?: string;
  /** Port for a server we start. @default a free port */
  port?: number;
  /** The redis-server executable. @default env.REDIS_SERVER ?? 'redis-server' */
  executable?: string;
}

/** A Redis server to use, and how to let go of it. */
export interface LocalRedis {
  /** `redis://host:port` of the server, without credentials. */
  url: string;
  /** How to connect to it: the URL with its credentials. */
  target: RedisTarget;
  /** True when we started the server ourselves (and `close()` stops it). */
  started: boolean;
  /** Stops the server if we started it; a no-op for a server that was already there. Idempotent. */
  close(): Promise<void>;
}

/** Where a local development server usually listens. */
export const DEFAULT_PROBE_URL = 'redis://127.0.0.1:6379';

/**
 * Finds a Redis server: `options.url`, else REDIS_URL, else one answering on `probeUrl` (unless
 * it is null), else the one already started on `dataDir`, else a `redis-server` we start on
 * 127.0.0.1. A URL that was given explicitly must answer PING, or this
 * throws RedisError('REDIS_UNAVAILABLE') rather than silently using another server.
 */
export async function ensureRedis(options: EnsureRedisOptions = {}): Promise<LocalRedis> {
  const env = options.env ?? process.env;
  const answerTimeoutMs = options.answerTimeoutMs ?? 5_000;
  const credentials = options.credentials ?? {};
  const given = nonEmpty(options.url) ?? nonEmpty(env.REDIS_URL);
  if (given !== undefined) {
    const target = compileRedisTarget({ url: given, ...credentials });
    if (!(await redisAnswersWithin(target, answerTimeoutMs))) {
      throw new RedisError('REDIS_UNAVAILABLE', `Redis at ${target.displayUrl} does not answer PING; start it or unset REDIS_URL`);
    }
    return existing(target);
  }
  const probeUrl = options.probeUrl === undefined ? DEFAULT_PROBE_URL : options.probeUrl;
  const probe = probeUrl === null ? undefined : compileRedisTarget({ url: probeUrl, ...credentials });
  if (probe !== undefined && (await probeAnswers(probe, options.probeTimeoutMs ?? 500))) return existing(probe);
  const executable = options.executable ?? nonEmpty(env.REDIS_SERVER);
  if (options.dataDir === undefined) {
    const server = await RedisServerProcess.start({ persist: false, port: options.port, executable });
    return { url: server.url, target: server.target, started: true, close: () => server.close() };
  }
  const dataDir = options.dataDir;
  // Two commands on one state directory (`list` beside a starting `launch --local`) must not both
  // start a server on the same append-only file: the one holding the lock looks and starts.
  return withDataDirLock(dataDir, async () => {
    const running = await serverOfDataDir(dataDir, answerTimeoutMs);
    if (running !== undefined) return existing(redisTargetOf(running));
    return startOnDataDir(dataDir, options.port, executable);
  });
}

/** Starts a persistent server on `dataDir` and writes its marker; close removes both. */
async function startOnDataDir(dataDir: string, port: number | undefined, executable: string | undefined): Promise<LocalRedis> {
  const server = await RedisServerProcess.start({ dir: dataDir, persist: true, port, executable });
  const marker = markerPath(dataDir);
  await writeFile(marker, JSON.stringify({ url: server.url, pid: server.pid }));
  return {
    url: server.url,
    target: server.target,
    started: true,
    close: async () => {
      await rm(marker, { force: true });
      await server.close();
    },
  };
}

/**
 * Runs `fn` while holding `<dataDir>/server.lock`, made atomically (a hard link of a file holding
 * our pid, so the lock is never seen empty). A lock whose process is gone is taken over.
 */
async function withDataDirLock<T>(dataDir: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dataDir, { recursive: true });
  const lock = path.join(dataDir, 'server.lock');
  const mine = path.join(dataDir, `server.lock.${process.pid}.${randomUUID()}`);
  await writeFile(mine, String(process.pid));
  try {
    while (!(await tryLink(mine, lock))) {
      const holder = Number(await readFile(lock, 'utf8').catch(() => '0'));
      if (holder > 0 && !processAlive(holder)) await rm(lock, { force: true });
      else await sleep(50);
    }
  } finally {
    await rm(mine, { force: true });
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/** Links `from` to `to`; false when `to` exists. */
async function tryLink(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/**
 * A data directory names the server started on it (`server.json`), so that a second command on
 * the same state directory (`status --follow --local` beside a running `launch --local`) uses
 * that server instead of starting another one on the same append-only file.
 */
function markerPath(dataDir: string): string {
  return path.join(dataDir, 'server.json');
}

/** The URL of the server started on `dataDir` when it still answers; a stale marker is removed. */
async function serverOfDataDir(dataDir: string, timeoutMs: number): Promise<string | undefined> {
  const marker = markerPath(dataDir);
  const text = await readFile(marker, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const url = markedUrl(text);
  if (url !== undefined && (await redisAnswersWithin(url, timeoutMs))) return url;
  await rm(marker, { force: true });
  return undefined;
}

/** The `url` of a marker's JSON; undefined for a marker cut short or otherwise unreadable. */
function markedUrl(text: string): string | undefined {
  try {
    const { url } = JSON.parse(text) as { url?: unknown };
    return typeof url === 'string' ? url : undefined;
  } catch {
    return undefined;
  }
}

function existing(target: RedisTarget): LocalRedis {
  return { url: target.url, target, started: false, close: async () => {} };
}

/** Whether the probe found a server we can use: one that refuses our credentials is not one. */
async function probeAnswers(probe: RedisTarget, timeoutMs: number): Promise<boolean> {
  try {
    return await pingRedis(probe, timeoutMs);
  } catch (error) {
    if (error instanceof RedisError) return false;
    throw error;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
