/**
 * compileWorkerOptions: the worker's deployment options, parsed once with the environment
 * passed in. Defaults, environment variables, options over the environment, and one
 * ConfigError per bad value whose `option` names it.
 */
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ConfigError } from '../shared/errors.ts';
import { compileWorkerOptions, type WorkerOptions } from '../worker/worker-options.ts';

const REDIS = 'redis://10.0.0.5:6379';

test('with only Redis given and an empty environment, every other option takes its default', (t) => {
  t.deepEqual(compileWorkerOptions({ redisUrl: REDIS }, {}), {
    redisUrl: REDIS,
    prefix: 'fmnist',
    backend: 'auto',
    threads: undefined,
    listenHost: '127.0.0.1',
    advertiseHost: undefined,
    checkpointRoot: path.resolve('.fmnist-cluster/checkpoints'),
    collectiveTimeoutMs: 600_000,
    authToken: undefined,
    collectiveTransport: 'auto',
    hostId: os.hostname(),
    name: `${os.hostname()}/${process.pid}`,
    metricsHost: '127.0.0.1',
    metricsPort: 'auto',
    metricsAdvertiseHost: '127.0.0.1',
  });
});

const ENV: NodeJS.ProcessEnv = {
  REDIS_URL: 'redis://redis:6379',
  FMNIST_PREFIX: 'lab',
  TRAIN_BACKEND: 'wasm',
  WORKER_LISTEN_HOST: '0.0.0.0',
  WORKER_ADVERTISE_HOST: 'worker-3',
  CHECKPOINT_ROOT: '/shared/checkpoints',
  FMNIST_AUTH_TOKEN: 'ring-secret',
  FMNIST_COLLECTIVE_TRANSPORT: 'grpc',
  FMNIST_HOST_ID: 'rack-2',
  WORKER_METRICS_PORT: '9100',
};

test('the environment passed in fills what the options leave out', (t) => {
  t.like(compileWorkerOptions({}, ENV), {
    redisUrl: 'redis://redis:6379',
    prefix: 'lab',
    backend: 'wasm',
    listenHost: '0.0.0.0',
    advertiseHost: 'worker-3',
    checkpointRoot: '/shared/checkpoints',
    authToken: 'ring-secret',
    collectiveTransport: 'grpc',
    hostId: 'rack-2',
    metricsHost: '0.0.0.0',
    metricsPort: 9100,
    metricsAdvertiseHost: 'worker-3',
  });
});

test('options win over the environment', (t) => {
  const options: WorkerOptions = {
    redisUrl: REDIS,
    prefix: 'mine',
    backend: 'cpu',
    threads: 3,
    listenHost: '10.0.0.9',
    advertiseHost: 'me',
    checkpointRoot: 'ckpt',
    collectiveTimeoutMs: 5_000,
    authToken: 'other',
    collectiveTransport: 'auto',
    hostId: 'h1',
    name: 'w1',
    metricsHost: '10.0.0.9',
    metricsPort: 'off',
  };
  t.deepEqual(compileWorkerOptions(options, ENV), { ...options, backend: 'cpu', checkpointRoot: path.resolve('ckpt'), metricsAdvertiseHost: 'me' });
});

/** [what is wrong, options, environment, the option the error must name]. */
const INVALID: [string, WorkerOptions, NodeJS.ProcessEnv, string][] = [
  ['no Redis anywhere', {}, {}, 'redis'],
  ['an empty REDIS_URL', {}, { REDIS_URL: '' }, 'redis'],
  ['zero threads', { redisUrl: REDIS, threads: 0 }, {}, 'threads'],
  ['fractional threads', { redisUrl: REDIS, threads: 1.5 }, {}, 'threads'],
  ['threads that are not a number', { redisUrl: REDIS, threads: Number.NaN }, {}, 'threads'],
  ['an unknown backend', { redisUrl: REDIS, backend: 'quantum' }, {}, 'backend'],
  ['an unknown TRAIN_BACKEND', { redisUrl: REDIS }, { TRAIN_BACKEND: 'quantum' }, 'backend'],
  ['a timeout under a second', { redisUrl: REDIS, collectiveTimeoutMs: 999 }, {}, 'collective-timeout-ms'],
  ['a fractional timeout', { redisUrl: REDIS, collectiveTimeoutMs: 1_000.5 }, {}, 'collective-timeout-ms'],
  ['a timeout that is not a number', { redisUrl: REDIS, collectiveTimeoutMs: Number.NaN }, {}, 'collective-timeout-ms'],
  ['an empty auth token', { redisUrl: REDIS }, { FMNIST_AUTH_TOKEN: '' }, 'auth-token'],
  ['an unknown collective transport', { redisUrl: REDIS, collectiveTransport: 'carrier-pigeon' }, {}, 'collective-transport'],
  ['an unknown FMNIST_COLLECTIVE_TRANSPORT', { redisUrl: REDIS }, { FMNIST_COLLECTIVE_TRANSPORT: 'shm' }, 'collective-transport'],
  ['an empty host id', { redisUrl: REDIS, hostId: '' }, {}, 'host-id'],
];

for (const [what, options, env, option] of INVALID) {
  test(`${what} is a ConfigError naming ${option}`, (t) => {
    const error = t.throws(() => compileWorkerOptions(options, env), { instanceOf: ConfigError });
    t.is(error?.code, 'CONFIG_INVALID');
    t.is(error.option, option);
  });
}
