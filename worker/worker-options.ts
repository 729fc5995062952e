import os from 'node:os';
import path from 'node:path';
import { parseBackendChoice, type BackendChoice } from '../shared/backend/select-backend.ts';
import { ConfigError } from '../shared/errors.ts';
import { DEFAULT_KEY_PREFIX } from '../shared/redis/keys.ts';
import { defaultAdvertiseHost } from './advertise-host.ts';

/** How a worker process is deployed; the training itself comes from the run's config. */
export interface WorkerOptions {
  /** Redis of the cluster. @default env.REDIS_URL */
  redisUrl?: string;
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
  /** Name in logs. @default `<hostname>/<pid>` */
  name?: string;
}

export interface CompiledWorkerOptions {
  redisUrl: string;
  prefix: string;
  backend: BackendChoice;
  threads: number | undefined;
  listenHost: string;
  advertiseHost: string | undefined;
  ringPort: number;
  checkpointRoot: string;
  collectiveTimeoutMs: number;
  authToken: string | undefined;
  name: string;
}

/**
 * Fills defaults from `env` and checks every value; throws ConfigError naming the first bad one.
 * An empty WORKER_THREADS, WORKER_RING_PORT, WORKER_ADVERTISE_HOST or FMNIST_AUTH_TOKEN counts
 * as unset, so a compose file can pass `${VAR:-}` through.
 */
export function compileWorkerOptions(options: WorkerOptions, env: NodeJS.ProcessEnv = process.env): CompiledWorkerOptions {
  const redisUrl = options.redisUrl ?? env.REDIS_URL;
  if (!redisUrl) throw new ConfigError('worker needs Redis: pass --redis redis://host:port or set REDIS_URL');
  const timeout = options.collectiveTimeoutMs ?? 600_000;
  if (!Number.isInteger(timeout) || timeout < 1000) throw new ConfigError(`collective timeout must be an integer >= 1000 ms, got ${timeout}`);
  const threads = options.threads ?? numberFromEnv(env.WORKER_THREADS);
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new ConfigError(`threads must be a positive integer, got ${threads}`);
  }
  const ringPort = options.ringPort ?? numberFromEnv(env.WORKER_RING_PORT) ?? 0;
  if (!Number.isInteger(ringPort) || ringPort < 0 || ringPort > 65_535) throw new ConfigError(`ring port must be an integer from 0 to 65535, got ${ringPort}`);
  const listenHost = options.listenHost ?? env.WORKER_LISTEN_HOST ?? '127.0.0.1';
  return {
    redisUrl,
    prefix: options.prefix ?? env.FMNIST_PREFIX ?? DEFAULT_KEY_PREFIX,
    backend: parseBackendChoice(options.backend ?? env.TRAIN_BACKEND ?? 'auto'),
    threads,
    listenHost,
    advertiseHost: options.advertiseHost ?? (env.WORKER_ADVERTISE_HOST || undefined) ?? defaultAdvertiseHost(listenHost),
    ringPort,
    checkpointRoot: path.resolve(options.checkpointRoot ?? env.CHECKPOINT_ROOT ?? '.fmnist-cluster/checkpoints'),
    collectiveTimeoutMs: timeout,
    authToken: options.authToken ?? (env.FMNIST_AUTH_TOKEN || undefined),
    name: options.name ?? `${os.hostname()}/${process.pid}`,
  };
}

/** A number from an environment variable; undefined when unset or empty, NaN (rejected by the caller's check) when not a number. */
function numberFromEnv(raw: string | undefined): number | undefined {
  return raw === undefined || raw === '' ? undefined : Number(raw);
}
