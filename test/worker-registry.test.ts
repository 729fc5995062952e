/**
 * The worker registry (shared/run/worker-registry.ts) against a real Redis: live workers are
 * listed with their metrics address and run, a stopped one is gone at once, and one that stops
 * beating disappears once its TTL has run out while one that keeps beating stays.
 */
import test from 'ava';
import type { Redis } from 'ioredis';
import { RedisKeys } from '../shared/redis/keys.ts';
import { listLiveWorkers, startHeartbeat, type WorkerBeat, type WorkerStatus } from '../shared/run/worker-registry.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

let redis: TestRedis;
let client: Redis;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
  client = redis.connect('registry-test');
});
test.after.always(() => redis?.close());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function training(runId: string, generation: number, rank: number, port: number): WorkerStatus {
  return { name: `w-${runId}-${rank}`, state: 'training', metricsAddress: `127.0.0.1:${port}`, assignment: { runId, generation, rank, worldSize: 2 } };
}

async function listedIds(keys: RedisKeys): Promise<string[]> {
  return (await listLiveWorkers(client, keys)).map((beat) => beat.workerId);
}

test('live workers are listed by run, then rank, with what their beat says; filters pick a run and a generation', async (t) => {
  const keys = new RedisKeys(uniquePrefix('registry'));
  const beats = [
    startHeartbeat(client, keys, { workerId: 'b1', status: () => training('run-b', 0, 1, 9001) }),
    startHeartbeat(client, keys, { workerId: 'a1', status: () => training('run-a', 3, 1, 9002) }),
    startHeartbeat(client, keys, { workerId: 'a0', status: () => training('run-a', 3, 0, 9003) }),
    startHeartbeat(client, keys, { workerId: 'old', status: () => training('run-a', 2, 0, 9004) }),
    startHeartbeat(client, keys, { workerId: 'idle', status: () => ({ name: 'spare', state: 'idle' }) }),
  ];
  await Promise.all(beats.map((beat) => beat.beat()));
  t.teardown(() => Promise.all(beats.map((beat) => beat.stop())).then(() => undefined));

  t.deepEqual(await listedIds(keys), ['idle', 'a0', 'old', 'a1', 'b1']);
  const runA = await listLiveWorkers(client, keys, { runId: 'run-a', generation: 3 });
  t.deepEqual(
    runA.map((beat) => [beat.workerId, beat.assignment?.rank, beat.metricsAddress]),
    [
      ['a0', 0, '127.0.0.1:9003'],
      ['a1', 1, '127.0.0.1:9002'],
    ],
  );
  t.deepEqual(
    (await listLiveWorkers(client, keys, { runId: 'run-b' })).map((beat) => beat.workerId),
    ['b1'],
  );
  const [spare] = (await listLiveWorkers(client, keys)).filter((beat) => beat.workerId === 'idle') as [WorkerBeat];
  t.is(spare.state, 'idle');
  t.is(spare.assignment, undefined);
  t.is(spare.pid, process.pid);
});

test('a beat follows the worker: a new status is listed after the next beat', async (t) => {
  const keys = new RedisKeys(uniquePrefix('registry-status'));
  let status: WorkerStatus = { name: 'w', state: 'idle', metricsAddress: '127.0.0.1:9100' };
  const heartbeat = startHeartbeat(client, keys, { workerId: 'w', status: () => status, intervalMs: 3_600_000 });
  t.teardown(() => heartbeat.stop());
  await heartbeat.beat();
  t.is((await listLiveWorkers(client, keys, { runId: 'run-x' })).length, 0);
  status = training('run-x', 0, 0, 9100);
  await heartbeat.beat();
  t.deepEqual(
    (await listLiveWorkers(client, keys, { runId: 'run-x' })).map((beat) => beat.workerId),
    ['w'],
  );
});

test('a stopped worker is gone at once; one that stops beating disappears after its TTL while one that beats stays', async (t) => {
  const keys = new RedisKeys(uniquePrefix('registry-ttl'));
  const ttlMs = 3_000;
  const firstBeat = Date.now();
  const beating = startHeartbeat(client, keys, { workerId: 'beating', status: () => training('run-x', 0, 0, 9200), ttlMs, intervalMs: 50 });
  const silent = startHeartbeat(client, keys, { workerId: 'silent', status: () => training('run-x', 0, 1, 9201), ttlMs: 1_500, intervalMs: 3_600_000 });
  const leaving = startHeartbeat(client, keys, { workerId: 'leaving', status: () => training('run-y', 0, 0, 9202) });
  // Every first beat is in Redis before the listing.
  await Promise.all([beating.beat(), silent.beat(), leaving.beat()]);
  t.teardown(() => Promise.all([beating.stop(), silent.stop()]).then(() => undefined));
  t.deepEqual((await listedIds(keys)).sort(), ['beating', 'leaving', 'silent']);

  await leaving.stop();
  await leaving.stop();
  // Its key would live 5 minutes: only stop() can have removed it.
  const afterStop = await listedIds(keys);
  t.false(afterStop.includes('leaving'), 'stop() deregisters at once');
  t.true(afterStop.includes('beating'));

  while ((await listedIds(keys)).includes('silent')) await sleep(50);
  t.deepEqual(await client.smembers(keys.workerIndex()), ['beating'], 'the expired id left the index');
  // Watch the beating worker until one and a half TTLs after its first beat: without its
  // refreshes its key would be gone after one. (Only a stall of this whole process longer than
  // the TTL less the 50 ms interval could break this.)
  while (Date.now() - firstBeat < 1.5 * ttlMs) {
    t.deepEqual(await listedIds(keys), ['beating']);
    await sleep(100);
  }
});
