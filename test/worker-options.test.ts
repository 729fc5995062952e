/**
 * compileWorkerOptions: the worker's deployment options, parsed once with the environment
 * passed in. Defaults, environment variables, options over the environment, and one
 * ConfigError per bad value whose `option` names it. And how a worker is reached when it runs in
 * a container or on another host: listening on every interface it advertises an address its
 * peers can dial (not 127.0.0.1), the ring port can be fixed, and the environment of a compose
 * file (empty values for unset knobs) is understood.
 */
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { compileRedisTarget } from '../shared/config/redis-options.ts';
import { ConfigError } from '../shared/errors.ts';
import { freePort } from '../shared/redis/redis-server-process.ts';
import { defaultAdvertiseHost } from '../worker/advertise-host.ts';
import { RingMember } from '../worker/collective/ring-allreduce.ts';
import { compileWorkerOptions, type WorkerOptions } from '../worker/worker-options.ts';

const REDIS = 'redis://10.0.0.5:6379';

test('with only Redis given and an empty environment, every other option takes its default', (t) => {
  t.deepEqual(compileWorkerOptions({ redisUrl: REDIS }, {}), {
    redis: compileRedisTarget({ url: REDIS }),
    prefix: 'fmnist',
    backend: 'auto',
    threads: undefined,
    listenHost: '127.0.0.1',
    advertiseHost: undefined,
    ringPort: 0,
    checkpointRoot: path.resolve('.fmnist-cluster/checkpoints'),
    collectiveTimeoutMs: 600_000,
    authToken: undefined,
    tls: undefined,
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
    redis: { url: 'redis://redis:6379' },
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
    ringPort: 4000,
    checkpointRoot: 'ckpt',
    collectiveTimeoutMs: 5_000,
    authToken: 'other',
    collectiveTransport: 'auto',
    hostId: 'h1',
    name: 'w1',
    metricsHost: '10.0.0.9',
    metricsPort: 'off',
  };
  const { redisUrl, ...rest } = options;
  t.deepEqual(compileWorkerOptions(options, ENV), {
    ...rest,
    redis: compileRedisTarget({ url: redisUrl! }),
    tls: undefined,
    backend: 'cpu',
    checkpointRoot: path.resolve('ckpt'),
    metricsAdvertiseHost: 'me',
  });
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
  ['a ring port that is not a number', { redisUrl: REDIS }, { WORKER_RING_PORT: 'http' }, 'ring-port'],
  ['a ring port over 65535', { redisUrl: REDIS }, { WORKER_RING_PORT: '65536' }, 'ring-port'],
  ['a negative ring port', { redisUrl: REDIS, ringPort: -1 }, {}, 'ring-port'],
  ['zero WORKER_THREADS', { redisUrl: REDIS }, { WORKER_THREADS: '0' }, 'threads'],
  ['WORKER_THREADS that are not a number', { redisUrl: REDIS }, { WORKER_THREADS: 'two' }, 'threads'],
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

type Interfaces = ReturnType<typeof os.networkInterfaces>;

function address(family: 'IPv4' | 'IPv6', value: string, internal = false): os.NetworkInterfaceInfo {
  const common = { address: value, netmask: '', mac: '00:00:00:00:00:00', internal, cidr: null };
  return family === 'IPv4' ? { ...common, family } : { ...common, family, scopeid: 0 };
}

const LOOPBACK = { lo: [address('IPv4', '127.0.0.1', true), address('IPv6', '::1', true)] };

test('a worker bound to one interface advertises it; bound to all, its first non-loopback address', (t) => {
  const interfaces: Interfaces = { ...LOOPBACK, eth0: [address('IPv6', 'fe80::1'), address('IPv4', '172.18.0.5')], eth1: [address('IPv4', '10.0.0.9')] };
  t.is(defaultAdvertiseHost('10.0.0.9', interfaces, 'host-a'), undefined);
  t.is(defaultAdvertiseHost('0.0.0.0', interfaces, 'host-a'), '172.18.0.5');
  t.is(defaultAdvertiseHost('::', interfaces, 'host-a'), '172.18.0.5');
});

test('without IPv4 it advertises a routable IPv6 address (never a link-local one), and without either its hostname', (t) => {
  t.is(defaultAdvertiseHost('0.0.0.0', { ...LOOPBACK, eth0: [address('IPv6', 'fe80::1'), address('IPv6', 'fd00::7')] }, 'host-b'), 'fd00::7');
  t.is(defaultAdvertiseHost('0.0.0.0', { ...LOOPBACK, eth0: [address('IPv6', 'FE80::2')] }, 'host-b'), 'host-b');
  t.is(defaultAdvertiseHost('0.0.0.0', LOOPBACK, 'host-b'), 'host-b');
});

test('an explicit advertise host wins over the default, from a flag or the environment', (t) => {
  t.is(compileWorkerOptions({ redisUrl: REDIS, listenHost: '0.0.0.0', advertiseHost: 'worker-3' }, {}).advertiseHost, 'worker-3');
  t.is(compileWorkerOptions({ redisUrl: REDIS }, { WORKER_LISTEN_HOST: '0.0.0.0', WORKER_ADVERTISE_HOST: 'worker-4' }).advertiseHost, 'worker-4');
  t.is(compileWorkerOptions({ redisUrl: REDIS }, {}).advertiseHost, undefined, 'loopback by default: the ring advertises 127.0.0.1');
});

test('the ring port, threads and auth token come from the environment; an empty value is unset', (t) => {
  const set = compileWorkerOptions({}, { REDIS_URL: REDIS, WORKER_RING_PORT: '29500', WORKER_THREADS: '3', FMNIST_AUTH_TOKEN: 's3cret' });
  t.like(set, { ringPort: 29500, threads: 3, authToken: 's3cret' });
  const empty = compileWorkerOptions({}, { REDIS_URL: REDIS, WORKER_RING_PORT: '', WORKER_THREADS: '', FMNIST_AUTH_TOKEN: '', WORKER_ADVERTISE_HOST: '' });
  t.like(empty, { ringPort: 0, threads: undefined, authToken: undefined, advertiseHost: undefined });
  t.is(compileWorkerOptions({ ringPort: 4000 }, { REDIS_URL: REDIS, WORKER_RING_PORT: '29500' }).ringPort, 4000, 'the flag wins');
});

test('two workers listening on every interface at fixed ports reach each other at the addresses they advertise by default', async (t) => {
  const options = compileWorkerOptions({}, { REDIS_URL: REDIS, WORKER_LISTEN_HOST: '0.0.0.0' });
  t.not(options.advertiseHost, undefined);
  t.false(['127.0.0.1', '::1', 'localhost'].includes(options.advertiseHost!), `advertised ${options.advertiseHost}`);
  const ports = [await freePort(), await freePort()];
  const members = await Promise.all(
    ports.map((port, rank) => RingMember.start({ rank, worldSize: 2, listenHost: options.listenHost, advertiseHost: options.advertiseHost, port })),
  );
  try {
    t.deepEqual(
      members.map((member) => member.address),
      ports.map((port) => (options.advertiseHost!.includes(':') ? `[${options.advertiseHost}]:${port}` : `${options.advertiseHost}:${port}`)),
    );
    await Promise.all(members.map((member) => member.connect(members.map((m) => m.address))));
    const buffers = [new Float32Array([1, 2, 3]), new Float32Array([10, 20, 30])];
    await Promise.all(members.map((member, rank) => member.allReduceSum(buffers[rank], { runId: 'advertise', generation: 0, step: 0 })));
    for (const buffer of buffers) t.deepEqual([...buffer], [11, 22, 33]);
  } finally {
    await Promise.all(members.map((member) => member.close()));
  }
});
