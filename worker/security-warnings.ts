/**
 * What a worker's settings leave exposed, said once at start-up: a deployment that works but
 * sends a secret where others can read it should not stay silent about it.
 */
import type { RedisTarget } from '../shared/config/redis-options.ts';
import { isLoopbackHost } from '../shared/net/host-port.ts';
import type { CompiledWorkerOptions } from './worker-options.ts';

/** One warning, with a stable code (the message is for people). */
export interface SecurityWarning {
  /**
   * RING_TOKEN_IN_CLEAR: the ring's bearer token goes over a network without TLS.
   * REDIS_PASSWORD_IN_CLEAR: the Redis password goes to a host beyond loopback over redis://.
   */
  code: 'RING_TOKEN_IN_CLEAR' | 'REDIS_PASSWORD_IN_CLEAR';
  message: string;
}

type SecuritySettings = Pick<CompiledWorkerOptions, 'authToken' | 'tls' | 'listenHost' | 'advertiseHost' | 'redis'>;

/**
 * The warnings for `options`. The token travels in every call's metadata: without TLS, anyone
 * on the path between two hosts reads it, and with it can join or disturb any ring of the run.
 * Between ranks of one machine (loopback) it never leaves the host.
 */
export function securityWarnings(options: SecuritySettings): SecurityWarning[] {
  return [...ringWarnings(options), ...redisWarnings(options.redis)];
}

function ringWarnings(options: SecuritySettings): SecurityWarning[] {
  const reached = [options.listenHost, options.advertiseHost].filter((host) => host !== undefined);
  if (options.authToken === undefined || options.tls !== undefined || reached.every(isLoopbackHost)) return [];
  return [
    {
      code: 'RING_TOKEN_IN_CLEAR',
      message: `the ring listens on ${options.listenHost} and FMNIST_AUTH_TOKEN is sent without TLS: anyone on the network can read it; give --tls-cert, --tls-key and --tls-ca`,
    },
  ];
}

/** Redis's AUTH command carries the password as it is: over redis:// anyone on the path reads it. */
function redisWarnings(redis: RedisTarget): SecurityWarning[] {
  const url = new URL(redis.url);
  if (redis.redisOptions.password === undefined || url.protocol === 'rediss:' || isLoopbackHost(url.hostname)) return [];
  return [
    {
      code: 'REDIS_PASSWORD_IN_CLEAR',
      message: `the Redis password is sent to ${redis.displayUrl} without TLS: anyone on the network can read it; use a rediss:// URL`,
    },
  ];
}
