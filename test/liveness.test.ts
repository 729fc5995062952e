import test from 'ava';
import { redisTargetOf } from '../shared/config/redis-options.ts';
import type { Redis } from 'ioredis';
import { CollectiveError } from '../shared/errors.ts';
import { RedisKeys } from '../shared/redis/keys.ts';
import { silentRanks, type LivenessBeat as Beat } from '../shared/run/liveness.ts';
import { LivenessBeat } from '../worker/liveness/liveness-beat.ts';
import { PeerWatch } from '../worker/liveness/peer-watch.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

let redis: TestRedis;
let client: Redis;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
  client = redis.connect('liveness-test');
});
test.after.always(() => redis?.close());

/** Blocks this thread as a synchronous training step does. */
function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spinning, as a CPU step does
  }
}

test('the beat thread keeps a rank alive through a main-thread block longer than the timeout, and a leave says so', async (t) => {
  const keys = new RedisKeys(uniquePrefix('beat'));
  const beat = new LivenessBeat(redisTargetOf(redis.url));
  t.teardown(() => beat.close());
  await beat.assign(client, keys, { runId: 'r', generation: 0, rank: 1, timeoutMs: 1_000 });
  t.deepEqual(await silentRanks(client, keys, 'r', 0, [0, 1]), [0], 'rank 1 beats, rank 0 never joined');
  blockFor(2_500);
  t.deepEqual(await silentRanks(client, keys, 'r', 0, [1]), [], 'the thread beat while the main thread was blocked');
  await beat.leave();
  const left = JSON.parse((await client.get(keys.liveness('r', 0, 1)))!) as Beat;
  t.like(left, { state: 'left', pid: process.pid });
  await beat.close();
  t.is(beat.state, 'closed');
});

test('a peer whose beat stops fails the guarded all-reduce with COLLECTIVE_PEER_HUNG naming it; one that left does not', async (t) => {
  const keys = new RedisKeys(uniquePrefix('watch'));
  const live = { runId: 'r', generation: 2, timeoutMs: 1_000 };
  // Rank 1 left cleanly (it comes first: were a leave taken for silence, it would be named);
  // rank 2 beat once and then fell silent (a stopped process).
  await client.set(keys.liveness('r', 2, 1), JSON.stringify({ state: 'left', pid: 1, host: 'h' }), 'PX', 60_000);
  const started = performance.now();
  await client.set(keys.liveness('r', 2, 2), JSON.stringify({ state: 'beating', pid: 2, host: 'h' }), 'PX', 1_000);
  const watch = new PeerWatch({ ...live, rank: 0, worldSize: 3, redis: client, keys });
  t.teardown(() => watch.stop());
  // An all-reduce that never finishes: the peers it waits for never come.
  const stuck = { allReduceSum: () => new Promise<never>(() => {}) };
  const error = await t.throwsAsync(watch.guard(stuck).allReduceSum(new Float32Array(4), { runId: 'r', generation: 2, step: 1 }));
  t.true(error instanceof CollectiveError);
  t.is((error as CollectiveError).code, 'COLLECTIVE_PEER_HUNG');
  t.is((error as CollectiveError).peerRank, 2);
  t.is(watch.state, 'tripped');
  t.true(performance.now() - started >= 1_000, 'not before the silent key expired');
  const again = await t.throwsAsync(watch.guard(stuck).allReduceSum(new Float32Array(4), { runId: 'r', generation: 2, step: 2 }));
  t.is((again as CollectiveError).code, 'COLLECTIVE_PEER_HUNG', 'every later all-reduce fails at once');
});

test('a Redis stall that outlasts the heartbeat timeout is not taken for a hung peer; a peer silent after it is', async (t) => {
  const stalling = await startTestRedis({ persist: false });
  t.teardown(() => stalling.close());
  const watcher = stalling.connect('liveness-watcher');
  const peer = stalling.connect('liveness-peer');
  const keys = new RedisKeys(uniquePrefix('stall'));
  const live = { runId: 'r', generation: 0, timeoutMs: 1_000 };
  // Rank 1's beats, by hand: each keeps its key for one timeout.
  const beatOnce = () => peer.set(keys.liveness('r', 0, 1), JSON.stringify({ state: 'beating', pid: 1, host: 'h' }), 'PX', live.timeoutMs);
  await beatOnce();
  const watch = new PeerWatch({ ...live, rank: 0, worldSize: 2, redis: watcher, keys });
  t.teardown(() => watch.stop());
  const stuck = { allReduceSum: () => new Promise<never>(() => {}) };
  const guarded = watch.guard(stuck).allReduceSum(new Float32Array(4), { runId: 'r', generation: 0, step: 1 });
  guarded.catch(() => {});
  // Redis answers nothing for 2.5 timeouts: the key expires meanwhile, and the watch's read
  // waits in ioredis' queue and is answered "missing" the moment Redis goes on.
  const pid = stalling.server.pid!;
  process.kill(pid, 'SIGSTOP');
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  process.kill(pid, 'SIGCONT');
  // The peer beats again right after, as a live peer does once it can.
  for (let k = 0; k < 6; k += 1) {
    await beatOnce();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.is(watch.state, 'watching', 'a key that lapsed while nobody could write it is not a hang');
  // The watch still works: a peer that stops beating now is found.
  const error = await t.throwsAsync(guarded);
  t.is((error as CollectiveError).code, 'COLLECTIVE_PEER_HUNG');
  t.is((error as CollectiveError).peerRank, 1);
});
