/**
 * How a worker is reached when it runs in a container or on another host: listening on every
 * interface it advertises an address its peers can dial (not 127.0.0.1), the ring port can be
 * fixed, and the environment of a compose file (empty values for unset knobs) is understood.
 */
import os from 'node:os';
import test from 'ava';
import { defaultAdvertiseHost } from '../worker/advertise-host.ts';
import { RingMember } from '../worker/collective/ring-allreduce.ts';
import { compileWorkerOptions } from '../worker/worker-options.ts';
import { ConfigError } from '../shared/errors.ts';
import { freePort } from '../shared/redis/redis-server-process.ts';

type Interfaces = ReturnType<typeof os.networkInterfaces>;

function address(family: 'IPv4' | 'IPv6', value: string, internal = false): os.NetworkInterfaceInfo {
  const common = { address: value, netmask: '', mac: '00:00:00:00:00:00', internal, cidr: null };
  return family === 'IPv4' ? { ...common, family } : { ...common, family, scopeid: 0 };
}

const LOOPBACK = { lo: [address('IPv4', '127.0.0.1', true), address('IPv6', '::1', true)] };
const REDIS = 'redis://redis:6379';

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

test('a ring port or thread count that is not a valid number is a ConfigError', (t) => {
  for (const env of [{ WORKER_RING_PORT: 'http' }, { WORKER_RING_PORT: '65536' }, { WORKER_RING_PORT: '-1' }, { WORKER_THREADS: '0' }, { WORKER_THREADS: 'two' }]) {
    t.throws(() => compileWorkerOptions({}, { REDIS_URL: REDIS, ...env }), { instanceOf: ConfigError }, JSON.stringify(env));
  }
});

test('two workers listening on every interface at fixed ports reach each other at the addresses they advertise by default', async (t) => {
  const options = compileWorkerOptions({}, { REDIS_URL: REDIS, WORKER_LISTEN_HOST: '0.0.0.0' });
  t.not(options.advertiseHost, undefined);
  t.false(['127.0.0.1', '::1', 'localhost'].includes(options.advertiseHost!), `advertised ${options.advertiseHost}`);
  const ports = [await freePort(), await freePort()];
  const members = await Promise.all(ports.map((port, rank) => RingMember.start({ rank, worldSize: 2, listenHost: options.listenHost, advertiseHost: options.advertiseHost, port })));
  try {
    t.deepEqual(members.map((member) => member.address), ports.map((port) => (options.advertiseHost!.includes(':') ? `[${options.advertiseHost}]:${port}` : `${options.advertiseHost}:${port}`)));
    await Promise.all(members.map((member) => member.connect(members.map((m) => m.address))));
    const buffers = [new Float32Array([1, 2, 3]), new Float32Array([10, 20, 30])];
    await Promise.all(members.map((member, rank) => member.allReduceSum(buffers[rank], { runId: 'advertise', generation: 0, step: 0 })));
    for (const buffer of buffers) t.deepEqual([...buffer], [11, 22, 33]);
  } finally {
    await Promise.all(members.map((member) => member.close()));
  }
});
