import os from 'node:os';
import path from 'node:path';
import { parseBackendChoice, type BackendChoice } from '../shared/backend/select-backend.ts';
import { ConfigError } from '../shared/errors.ts';
import { DEFAULT_KEY_PREFIX } from '../shared/redis/keys.ts';

/** How a worker process is deployed; the training itself comes from the run's config. */
export interface WorkerOptions {
  /** Redis of the cluster. @default env.REDIS_URL */
  redisUrl?: string;
  /** Key prefix of the cluster. @default env.FMNIST_PREFIX ?? 'fmnist' */
  prefix?: string;
  /** Backend to use when the run asks for 'auto'. @default env.TRAIN_BACKEND ?? 'auto' */
  backend?: string;
  /** Threads for backends that take a count. @default the backend's own */
  threads?: number;
  /** Interface the ring's gRPC server listens on. @default env.WORKER_LISTEN_HOST ?? '127.0.0.1' */
  listenHost?: string;
  /** Host peers dial to reach this worker. @default env.WORKER_ADVERTISE_HOST ?? listenHost */
  advertiseHost?: string;
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
  checkpointRoot: string;
  collectiveTimeoutMs: number;
  authToken: string | undefined;
  name: string;
}

export function compileWorkerOptions(options: WorkerOptions, env: NodeJS.ProcessEnv = process.env): CompiledWorkerOptions {
  const redisUrl = options.redisUrl ?? env.REDIS_URL;
  if (!redisUrl) throw new ConfigError('worker needs Redis: pass --redis redis://host:port or set REDIS_URL');
  const timeout = options.collectiveTimeoutMs ?? 600_000;
  if (!Number.isInteger(timeout) || timeout < 1000) throw new ConfigError(`collective timeout must be an integer >= 1000 ms, got ${timeout}`);
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
    throw new ConfigError(`threads must be a positive integer, got ${options.threads}`);
  }
  return {
    redisUrl,
    prefix: options.prefix ?? env.FMNIST_PREFIX ?? DEFAULT_KEY_PREFIX,
    backend: parseBackendChoice(options.backend ?? env.TRAIN_BACKEND ?? 'auto'),
    threads: options.threads,
    listenHost: options.listenHost ?? env.WORKER_LISTEN_HOST ?? '127.0.0.1',
    advertiseHost: options.advertiseHost ?? env.WORKER_ADVERTISE_HOST,
    checkpointRoot: path.resolve(options.checkpointRoot ?? env.CHECKPOINT_ROOT ?? '.fmnist-cluster/checkpoints'),
    collectiveTimeoutMs: timeout,
    authToken: options.authToken ?? env.FMNIST_AUTH_TOKEN,
    name: options.name ?? `${os.hostname()}/${process.pid}`,
  };
}
