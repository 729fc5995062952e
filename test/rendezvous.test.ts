import test from 'ava';
import type { Redis } from 'ioredis';
import { ConfigError, RunError } from '../shared/errors.ts';
import { RedisKeys } from '../shared/redis/keys.ts';
import { joinRendezvous, rendezvousMembers, type JoinOptions, type Rendezvous } from '../worker/rendezvous.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

let redis: TestRedis;
let client: Redis;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
  client = redis.connect('rendezvous-test');
});
test.after.always(() => redis?.close());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Worker i of a test: its own connection, address and pid. */
function joinAs(keys: RedisKeys, i: number, options: Partial<JoinOptions>): Promise<Rendezvous> {
  return joinRendezvous(redis.connect(`worker-${i}`), keys, {
    runId: 'run-x',
    generation: 0,
    worldSize: 3,
    address: `127.0.0.1:${50_000 + i}`,
    pid: 1_000 + i,
    host: 'test-host',
    timeoutMs: 5_000,
    pollMs: 10,
    ...options,
  });
}

/** Resolves once `count` members of generation 0 are in Redis, so the next join comes after them. */
async function untilMembers(keys: RedisKeys, count: number): Promise<void> {
  while ((await rendezvousMembers(client, keys, 'run-x', 0)).length < count) await sleep(5);
}

async function expectRunError(t: import('ava').ExecutionContext, promise: Promise<unknown>, code: string): Promise<void> {
  const error = await t.throwsAsync(promise);
  t.true(error instanceof RunError, `${error?.name}: ${error?.message}`);
  t.is((error as RunError).code, code);
}

test('three workers joining one after another get ranks 0..2 in join order and the same address list', async (t) => {
  const keys = new RedisKeys(uniquePrefix('rdv'));
  const joined: Promise<Rendezvous>[] = [];
  for (const [order, i] of [2, 0, 1].entries()) {
    joined.push(joinAs(keys, i, {}));
    await untilMembers(keys, order + 1);
  }
  const formed = await Promise.all(joined);
  t.deepEqual(
    formed.map((r) => r.rank),
    [0, 1, 2],
  );
  const expected = ['127.0.0.1:50002', '127.0.0.1:50000', '127.0.0.1:50001'];
  for (const r of formed) {
    t.deepEqual(r.addresses, expected);
    t.deepEqual(
      r.peers.map((p) => [p.rank, p.pid]),
      [
        [0, 1002],
        [1, 1000],
        [2, 1001],
      ],
    );
    t.is(r.worldSize, 3);
  }
});

test('three workers joining at the same moment get distinct ranks and agree on the list', async (t) => {
  const keys = new RedisKeys(uniquePrefix('rdv-burst'));
  const joined = await Promise.all([0, 1, 2].map((i) => joinAs(keys, i, {})));
  t.deepEqual(joined.map((r) => r.rank).sort(), [0, 1, 2]);
  for (const r of joined) t.deepEqual(r.addresses, joined[0].addresses);
  joined.forEach((r, i) => t.is(r.addresses[r.rank], `127.0.0.1:${50_000 + i}`, `worker ${i} finds itself at its rank`));
});

test('a rendezvous that never fills times out with RUN_RENDEZVOUS_TIMEOUT and the members leave', async (t) => {
  const keys = new RedisKeys(uniquePrefix('rdv-timeout'));
  const started = Date.now();
  const results = await Promise.allSettled([0, 1].map((i) => joinAs(keys, i, { timeoutMs: 300 })));
  const elapsed = Date.now() - started;
  for (const result of results) {
    t.is(result.status, 'rejected');
    const reason = (result as PromiseRejectedResult).reason as RunError;
    t.true(reason instanceof RunError);
    t.is(reason.code, 'RUN_RENDEZVOUS_TIMEOUT');
  }
  // Not before the deadline (load can only make it later); that it ends at all is the rejection.
  t.true(elapsed >= 300, `timed out after ${elapsed} ms`);
  t.deepEqual(await rendezvousMembers(client, keys, 'run-x', 0), []);
});

test('a new generation ignores the members of the old one', async (t) => {
  const keys = new RedisKeys(uniquePrefix('rdv-gen'));
  await Promise.all([0, 1, 2].map((i) => joinAs(keys, i, {})));
  await expectRunError(t, joinAs(keys, 7, { generation: 1, timeoutMs: 200 }), 'RUN_RENDEZVOUS_TIMEOUT');
  const next = await Promise.all([5, 6].map((i) => joinAs(keys, i, { generation: 1, worldSize: 2 })));
  t.deepEqual(next[0].addresses.slice().sort(), ['127.0.0.1:50005', '127.0.0.1:50006']);
  t.deepEqual(next[1].addresses, next[0].addresses);
  t.deepEqual(next.map((r) => r.rank).sort(), [0, 1]);
  t.is(next[1].generation, 1);
  t.is((await rendezvousMembers(client, keys, 'run-x', 0)).length, 3, 'the old generation is left as it was');
});

test('a requested rank is honoured, a taken one refused, and a re-join gets its old rank', async (t) => {
  const keys = new RedisKeys(uniquePrefix('rdv-rank'));
  const pinned = joinAs(keys, 0, { rank: 2 });
  await untilMembers(keys, 1);
  await expectRunError(t, joinAs(keys, 9, { rank: 2, timeoutMs: 100 }), 'RUN_RENDEZVOUS_RANK_TAKEN');
  const rejoin = joinAs(keys, 0, { rank: 2 });
  const others = [joinAs(keys, 1, {})];
  await untilMembers(keys, 2);
  others.push(joinAs(keys, 2, {}));
  const [first, again, a, b] = await Promise.all([pinned, rejoin, ...others]);
  t.deepEqual([first.rank, again.rank, a.rank, b.rank], [2, 2, 0, 1]);
  t.deepEqual(first.addresses, ['127.0.0.1:50001', '127.0.0.1:50002', '127.0.0.1:50000']);
  await t.throwsAsync(joinAs(keys, 0, { rank: 3 }), { instanceOf: ConfigError });
});
