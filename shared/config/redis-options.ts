/**
 * How every process reaches the cluster's Redis, built in one place: the URL (`redis://` or
 * `rediss://`, optionally `user:password@`), an ACL user and password given apart from it, and
 * the TLS files. Every connection, BullMQ's included, is made from the {@link RedisTarget}
 * compiled here (shared/redis/connect-redis.ts), so a password or CA given once applies to all.
 * Credentials are kept out of the URL that is logged: {@link RedisTarget.displayUrl} masks them.
 */
import type { RedisOptions } from 'ioredis';
import { ConfigError } from '../errors.ts';
import { loadTlsMaterial } from './tls-files.ts';

/** What a command or worker was given. */
export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url: string;
  /** ACL user. @default `--redis-user`, else env.REDIS_USERNAME, else the URL's */
  username?: string;
  /** Password (of the ACL user, or `requirepass`). @default `--redis-password`, else env.REDIS_PASSWORD, else the URL's */
  password?: string;
  /** PEM CA to check the server's certificate against (rediss:// only). @default the system's CAs; env.REDIS_TLS_CA */
  tlsCa?: string;
  /** PEM client certificate, for servers that require one (`tls-auth-clients yes`). @default env.REDIS_TLS_CERT */
  tlsCert?: string;
  /** PEM key of `tlsCert`. @default env.REDIS_TLS_KEY */
  tlsKey?: string;
}

/** The credentials and TLS files alone: what applies to whichever URL is used. */
export type RedisCredentials = Omit<RedisConnectionOptions, 'url'>;

/** A checked {@link RedisConnectionOptions}: what every connection to that Redis is made from. */
export interface RedisTarget {
  /** The URL without its credentials (scheme, host, port, db). */
  readonly url: string;
  /** The URL for logs and errors: `redis://user:***@host:port` when it has credentials. */
  readonly displayUrl: string;
  /** What each ioredis connection adds to `url`: username, password, TLS material. */
  readonly redisOptions: RedisOptions;
  /** The settings themselves (file paths, not contents), with `url`: for a child process to connect alike. */
  readonly settings: RedisConnectionOptions;
}

const TLS_NAMES = { ca: 'redis-tls-ca', cert: 'redis-tls-cert', key: 'redis-tls-key' } as const;

/** The environment variables of {@link RedisCredentials}, for child processes. */
export const REDIS_CREDENTIAL_ENV = {
  username: 'REDIS_USERNAME',
  password: 'REDIS_PASSWORD',
  tlsCa: 'REDIS_TLS_CA',
  tlsCert: 'REDIS_TLS_CERT',
  tlsKey: 'REDIS_TLS_KEY',
} as const satisfies Record<keyof RedisCredentials, string>;

/** Credentials given as options, else from the environment (an empty variable counts as unset). */
export function redisCredentials(given: RedisCredentials, env: NodeJS.ProcessEnv): RedisCredentials {
  const credentials: RedisCredentials = {};
  for (const [key, variable] of Object.entries(REDIS_CREDENTIAL_ENV) as [keyof RedisCredentials, string][]) {
    const value = given[key] || env[variable] || undefined;
    if (value !== undefined) credentials[key] = value;
  }
  return credentials;
}

/**
 * Checks the URL and reads the TLS files; throws ConfigError naming the option at fault
 * (`redis` for a URL that is not redis:// or rediss://, `redis-tls-*` for a file, or for TLS
 * files with a plaintext redis:// URL). Credentials given apart win over the URL's.
 */
export function compileRedisTarget(options: RedisConnectionOptions): RedisTarget {
  const parsed = parseRedisUrl(options.url);
  const username = options.username ?? (decodeURIComponent(parsed.username) || undefined);
  const password = options.password ?? (decodeURIComponent(parsed.password) || undefined);
  parsed.username = '';
  parsed.password = '';
  const tls = parsed.protocol === 'rediss:';
  const files = { ca: options.tlsCa, cert: options.tlsCert, key: options.tlsKey };
  const given = Object.entries(files).find(([, file]) => file !== undefined);
  if (!tls && given !== undefined) {
    throw new ConfigError(`--${TLS_NAMES[given[0] as keyof typeof files]} needs a rediss:// URL, got ${parsed.href}`, {
      option: TLS_NAMES[given[0] as keyof typeof files],
    });
  }
  const url = parsed.href;
  const redisOptions: RedisOptions = {
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(tls ? { tls: loadTlsMaterial(files, TLS_NAMES) } : {}),
  };
  return { url, displayUrl: maskedUrl(url, username, password), redisOptions, settings: { ...options, url, username, password } };
}

/** A target for a bare URL (credentials, if any, in it): tests, benchmarks, servers we started. */
export function redisTargetOf(endpoint: string | RedisTarget): RedisTarget {
  return typeof endpoint === 'string' ? compileRedisTarget({ url: endpoint }) : endpoint;
}

/**
 * How a child process (a `launch --local` worker) reaches the same Redis: `--redis` with the
 * URL and the credentials in environment variables, not on its command line (where `ps` shows
 * them to every user of the machine). Variables the target does not set are emptied, so the
 * parent's own do not leak into a child pointed at another server.
 */
export function redisChildEnv(target: RedisTarget): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, variable] of Object.entries(REDIS_CREDENTIAL_ENV) as [keyof RedisCredentials, string][]) env[variable] = target.settings[key] ?? '';
  return env;
}

function parseRedisUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new ConfigError(`--redis must be a redis:// or rediss:// URL, got one that does not parse`, { option: 'redis', cause: error });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError(`--redis must be a redis:// or rediss:// URL, got ${parsed.protocol}//`, { option: 'redis' });
  }
  return parsed;
}

function maskedUrl(url: string, username: string | undefined, password: string | undefined): string {
  if (username === undefined && password === undefined) return url;
  const masked = new URL(url);
  masked.username = username ?? '';
  masked.password = password === undefined ? '' : '***';
  return masked.href;
}
