import os from 'node:os';
import path from 'node:path';
import { compileComputeOptions, type BackendChoice } from '../shared/config/compute-options.ts';
import { compileRedisTarget, redisCredentials, type RedisCredentials, type RedisTarget } from '../shared/config/redis-options.ts';
import { ConfigError } from '../shared/errors.ts';
import { parseMetricsPort, type MetricsPort } from '../shared/metrics/metrics-server.ts';
import { dialableHost } from '../shared/net/host-port.ts';
import { DEFAULT_KEY_PREFIX } from '../shared/redis/keys.ts';
import { defaultAdvertiseHost } from './advertise-host.ts';
import type { RingTls } from './collective/ring-tls.ts';
import { compileRingTls, ringTlsFiles } from './ring-tls-options.ts';

/** How a worker process is deployed; the training itself comes from the run's config. */
export interface WorkerOptions {
  /** Redis of the cluster: `redis://` or `rediss://` (TLS), credentials allowed. @default env.REDIS_URL */
  redisUrl?: string;
  /**
   * Redis ACL user, password and TLS files (see shared/config/redis-options.ts); each defaults to
   * its environment variable (REDIS_USERNAME, REDIS_PASSWORD, REDIS_TLS_CA, REDIS_TLS_CERT, REDIS_TLS_KEY).
   */
  redisCredentials?: RedisCredentials;
  /** Key prefix of the cluster. @default env.FMNIST_PREFIX ?? 'fmnist' */
  prefix?: string;
  /** Backend to use when the run asks for 'auto'. @default env.TRAIN_BACKEND ?? 'auto' */
  backend?: string;
  /** Threads for backends that take a count. @default env.WORKER_THREADS, else the backend's own */
  threads?: number;
  /** Interface the ring's gRPC server listens on. @default env.WORKER_LISTEN_HOST ?? '127.0.0.1' */
  listenHost?: string;
  /**
   * Host peers dial to reach this worker.
   * @default env.WORKER_ADVERTISE_HOST, else listenHost, else (listening on 0.0.0.0 or ::) this
   * machine's first non-loopback address (worker/advertise-host.ts)
   */
  advertiseHost?: string;
  /** TCP port of the ring's gRPC server; 0 picks a free one for each job. @default env.WORKER_RING_PORT ?? 0 */
  ringPort?: number;
  /** Folder holding `<run>/ckpt-*` checkpoints, shared by all workers of a run. @default env.CHECKPOINT_ROOT ?? '.fmnist-cluster/checkpoints' */
  checkpointRoot?: string;
  /** Longest wait for the slowest peer in one all-reduce, in ms. @default 600000 */
  collectiveTimeoutMs?: number;
  /** Shared secret peers present to each other. @default env.FMNIST_AUTH_TOKEN */
  authToken?: string;
  /**
   * PEM certificate of this worker for the ring's mutual TLS; with `tlsKey` and `tlsCa`, all
   * three or none. It must name (subject alternative name) the host this worker advertises.
   * @default env.FMNIST_TLS_CERT (none: the ring is plaintext)
   */
  tlsCert?: string;
  /** PEM private key of `tlsCert`. @default env.FMNIST_TLS_KEY */
  tlsKey?: string;
  /** PEM certificate(s) of the CA that signed every worker's certificate. @default env.FMNIST_TLS_CA */
  tlsCa?: string;
  /**
   * 'auto': by placement (worker/collective-choice.ts): shared memory when every rank has the
   * same host id, hierarchical (shared memory within each host, the ring among one leader per
   * host) when some but not all share one, both only with the collective addon built; else the
   * gRPC ring. 'grpc': always the flat ring.
   * @default env.FMNIST_COLLECTIVE_TRANSPORT ?? 'auto'
   */
  collectiveTransport?: string;
  /** Which ranks share a host (and so may share memory). @default env.FMNIST_HOST_ID ?? os.hostname() */
  hostId?: string;
  /** Name in logs. @default `<hostname>/<pid>` */
  name?: string;
  /** Interface `/metrics` and `/healthz` listen on. @default env.WORKER_METRICS_HOST ?? listenHost */
  metricsHost?: string;
  /**
   * Port of `/metrics`: a number, `auto` (a free port, registered in Redis for discovery, so
   * several workers on one host never collide) or `off` / `0`.
   * @default env.WORKER_METRICS_PORT ?? 'auto'
   */
  metricsPort?: number | string;
}

/** {@link WorkerOptions} with every default filled in and checked. */
export interface CompiledWorkerOptions {
  /** Every Redis connection of the worker (its own and BullMQ's) is made from it. */
  redis: RedisTarget;
  prefix: string;
  backend: BackendChoice;
  threads: number | undefined;
  listenHost: string;
  advertiseHost: string | undefined;
  ringPort: number;
  /** Absolute. */
  checkpointRoot: string;
  collectiveTimeoutMs: number;
  authToken: string | undefined;
  /** The ring's mutual TLS, files read and checked; undefined: plaintext. */
  tls: RingTls | undefined;
  collectiveTransport: CollectiveTransport;
  hostId: string;
  name: string;
  metricsHost: string;
  metricsPort: MetricsPort;
  /** Host Prometheus dials for this worker's metrics: advertiseHost, else metricsHost (for a wildcard, as advertiseHost's default). */
  metricsAdvertiseHost: string;
}

/** How ranks all-reduce; see {@link WorkerOptions.collectiveTransport}. */
export type CollectiveTransport = 'auto' | 'grpc';

/** Shortest all-reduce timeout accepted: a shorter one fails healthy rings on a busy machine. */
const MIN_COLLECTIVE_TIMEOUT_MS = 1_000;

/**
 * Fills the defaults (from `env`, which tests pass) and checks every value; throws ConfigError
 * whose `option` names the bad one by its flag name (`redis`, `redis-tls-ca`, ..., `threads`, `backend`, `ring-port`,
 * `collective-timeout-ms`, `collective-transport`, `host-id`, `tls-cert`, `tls-key`, `tls-ca`: one missing
 * of the three, or a file that cannot be read or parsed). An empty environment variable
 * counts as unset, so a compose file can pass `${VAR:-}` through.
 */
export function compileWorkerOptions(options: WorkerOptions, env: NodeJS.ProcessEnv = process.env): CompiledWorkerOptions {
  const redisUrl = options.redisUrl ?? (env.REDIS_URL || undefined);
  if (!redisUrl) throw new ConfigError('worker needs Redis: pass --redis redis://host:port or set REDIS_URL', { option: 'redis' });
  const redis = compileRedisTarget({ url: redisUrl, ...redisCredentials(options.redisCredentials ?? {}, env) });
  const timeout = options.collectiveTimeoutMs ?? 600_000;
  if (!Number.isSafeInteger(timeout) || timeout < MIN_COLLECTIVE_TIMEOUT_MS) {
    throw new ConfigError(`collective timeout must be an integer >= ${MIN_COLLECTIVE_TIMEOUT_MS} ms, got ${timeout}`, { option: 'collective-timeout-ms' });
  }
  const authToken = options.authToken ?? (env.FMNIST_AUTH_TOKEN || undefined);
  const tls = compileRingTls(ringTlsFiles({ ca: options.tlsCa, cert: options.tlsCert, key: options.tlsKey }, env));
  const collectiveTransport = options.collectiveTransport ?? (env.FMNIST_COLLECTIVE_TRANSPORT || 'auto');
  if (collectiveTransport !== 'auto' && collectiveTransport !== 'grpc') {
    throw new ConfigError(`collective transport is auto or grpc, got ${JSON.stringify(collectiveTransport)}`, { option: 'collective-transport' });
  }
  const hostId = options.hostId ?? (env.FMNIST_HOST_ID || os.hostname());
  if (hostId === '') throw new ConfigError('the host id must not be empty', { option: 'host-id' });
  const compute = compileComputeOptions({ backend: options.backend, threads: options.threads ?? numberFromEnv(env.WORKER_THREADS) }, env);
  const ringPort = options.ringPort ?? numberFromEnv(env.WORKER_RING_PORT) ?? 0;
  if (!Number.isSafeInteger(ringPort) || ringPort < 0 || ringPort > 65_535) {
    throw new ConfigError(`ring port must be an integer from 0 to 65535, got ${ringPort}`, { option: 'ring-port' });
  }
  const listenHost = options.listenHost || env.WORKER_LISTEN_HOST || '127.0.0.1';
  const advertiseHost = options.advertiseHost ?? (env.WORKER_ADVERTISE_HOST || undefined) ?? defaultAdvertiseHost(listenHost);
  const metricsHost = options.metricsHost ?? env.WORKER_METRICS_HOST ?? listenHost;
  return {
    redis,
    prefix: options.prefix ?? env.FMNIST_PREFIX ?? DEFAULT_KEY_PREFIX,
    backend: compute.backend,
    threads: compute.threads,
    listenHost,
    advertiseHost,
    ringPort,
    checkpointRoot: path.resolve(options.checkpointRoot ?? env.CHECKPOINT_ROOT ?? '.fmnist-cluster/checkpoints'),
    collectiveTimeoutMs: timeout,
    authToken,
    tls,
    collectiveTransport,
    hostId,
    name: options.name ?? `${os.hostname()}/${process.pid}`,
    metricsHost,
    metricsPort: parseMetricsPort(options.metricsPort ?? env.WORKER_METRICS_PORT, 'auto'),
    metricsAdvertiseHost: advertiseHost ?? defaultAdvertiseHost(metricsHost) ?? dialableHost(metricsHost),
  };
}

/** A number from an environment variable; undefined when unset or empty, NaN (rejected by the caller's check) when not a number. */
function numberFromEnv(raw: string | undefined): number | undefined {
  return raw === undefined || raw === '' ? undefined : Number(raw);
}
