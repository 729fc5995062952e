import test from 'ava';
import type { Redis } from 'ioredis';
import { ShardStore } from '../shared/shards/shard-store.ts';
import { DatasetError } from '../shared/errors.ts';
import { SHARD_HEADER_BYTES, sha256Hex, type ImageSetLike } from '../shared/shards/shard-format.ts';
import { ShardCache } from '../shared/shards/shard-cache.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

let redis: TestRedis;
let client: Redis;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
  client = redis.connect('shard-test');
});
test.after.always(() => redis?.close());

/** `count` 28x28 images whose pixels and labels depend on `seed`, so two sets can differ. */
function syntheticSet(count: number, seed = 1): ImageSetLike {
  const images = new Uint8Array(count * 28 * 28);
  for (let i = 0; i < images.length; i += 1) images[i] = (i * 31 + seed * 17 + (i >>> 9)) & 0xff;
  const labels = Uint8Array.from({ length: count }, (_, i) => (i * 7 + seed) % 10);
  return { images, labels, count, height: 28, width: 28 };
}

async function expectDatasetError(t: import('ava').ExecutionContext, promise: Promise<unknown>, code: string): Promise<DatasetError> {
  const error = await t.throwsAsync(promise);
  t.true(error instanceof DatasetError, `${error?.name}: ${error?.message}`);
  t.is((error as DatasetError).code, code);
  return error as DatasetError;
}

test('a 2,500-image set round-trips through shards of 1,000, 1,000 and 500', async (t) => {
  const prefix = uniquePrefix('shards');
  const set = syntheticSet(2_500);
  const { manifest, stored, bytes } = await new ShardStore(client, prefix).store('fmnist-v1', set);
  t.true(stored);
  t.is(bytes, 3 * SHARD_HEADER_BYTES + 2_500 * (784 + 1), 'every byte written is reported (the published-bytes metric)');
  t.deepEqual(
    manifest.shards.map((s) => [s.index, s.count]),
    [
      [0, 1000],
      [1, 1000],
      [2, 500],
    ],
  );
  t.deepEqual({ ...manifest, shards: [] }, { version: 'fmnist-v1', shardSize: 1000, count: 2500, height: 28, width: 28, shards: [] });
  const value = await client.getBuffer(new ShardStore(client, prefix).keys.datasetShard('fmnist-v1', 2));
  t.is(value?.length, SHARD_HEADER_BYTES + 500 * (784 + 1));
  t.is(sha256Hex(value as Buffer), manifest.shards[2].sha256);

  const cache = new ShardCache(client, prefix);
  const loaded = await cache.load('fmnist-v1');
  t.deepEqual({ count: loaded.count, height: loaded.height, width: loaded.width }, { count: 2500, height: 28, width: 28 });
  t.true(Buffer.from(loaded.images).equals(Buffer.from(set.images)));
  t.true(Buffer.from(loaded.labels).equals(Buffer.from(set.labels)));
  t.is(await cache.load('fmnist-v1'), loaded, 'a second load is served from memory');
  t.deepEqual(cache.fetched, { memory: 0, redis: 3 });

  const third = await cache.shard('fmnist-v1', 2);
  t.is(third.count, 500);
  t.deepEqual(Array.from(third.labels.subarray(0, 3)), Array.from(set.labels.subarray(2000, 2003)));
  t.deepEqual(cache.fetched, { memory: 1, redis: 3 }, 'a shard fetched once is served from memory');
});

test('storing a version again is a no-op that returns the first manifest', async (t) => {
  const store = new ShardStore(client, uniquePrefix('once'));
  const first = await store.store('v1', syntheticSet(1_200, 1));
  const keysBefore = (await client.keys(`${store.keys.prefix}:*`)).sort();
  const valueBefore = await client.getBuffer(store.keys.datasetShard('v1', 0));

  const second = await store.store('v1', syntheticSet(1_200, 2));

  t.false(second.stored);
  t.is(second.bytes, 0);
  t.deepEqual(second.manifest, first.manifest);
  t.deepEqual((await client.keys(`${store.keys.prefix}:*`)).sort(), keysBefore);
  t.true((await client.getBuffer(store.keys.datasetShard('v1', 0)))?.equals(valueBefore as Buffer));
  const loaded = await new ShardCache(client, store.keys).load('v1');
  t.is(loaded.labels[0], syntheticSet(1, 1).labels[0], 'the first set is what workers get');
});

test('two coordinators storing the same version at once write it once', async (t) => {
  const prefix = uniquePrefix('concurrent');
  const [a, b] = [new ShardStore(client, prefix), new ShardStore(redis.connect('shard-second'), prefix)];
  const results = await Promise.all([a.store('v1', syntheticSet(3_000)), b.store('v1', syntheticSet(3_000))]);
  t.deepEqual(results.map((r) => r.stored).sort(), [false, true]);
  t.deepEqual(results[0].manifest, results[1].manifest);
});

test('the same version with another shape is refused', async (t) => {
  const store = new ShardStore(client, uniquePrefix('mismatch'));
  await store.store('v1', syntheticSet(1_000));
  await expectDatasetError(t, store.store('v1', syntheticSet(999)), 'DATASET_VERSION_MISMATCH');
});

test('a shard corrupted in Redis is fetched once more, then the load fails with DATASET_CHECKSUM naming that shard', async (t) => {
  const store = new ShardStore(client, uniquePrefix('corrupt'));
  await store.store('v1', syntheticSet(2_500));
  const key = store.keys.datasetShard('v1', 1);
  const original = (await client.getBuffer(key)) as Buffer;
  await client.setrange(key, SHARD_HEADER_BYTES + 4321, Buffer.from([original[SHARD_HEADER_BYTES + 4321] ^ 0x01]));

  const retried: number[] = [];
  const cache = new ShardCache(client, store.keys, ({ index }) => void retried.push(index));
  const error = await expectDatasetError(t, cache.load('v1'), 'DATASET_CHECKSUM');
  t.is(error.file, key);
  t.deepEqual(retried, [1], 'the corrupt shard, and only it, was fetched again once');

  await client.set(key, original);
  t.is((await cache.load('v1')).count, 2_500, 'a failed load is not remembered');
  t.deepEqual(retried, [1]);
});

test('a shard that fails its checksum once and is whole when fetched again loads', async (t) => {
  const store = new ShardStore(client, uniquePrefix('torn'));
  const set = syntheticSet(2_500);
  await store.store('v1', set);
  const key = store.keys.datasetShard('v1', 2);
  const original = (await client.getBuffer(key)) as Buffer;
  await client.setrange(key, SHARD_HEADER_BYTES + 7, Buffer.from([original[SHARD_HEADER_BYTES + 7] ^ 0x80]));

  // The shard is repaired between the failed check and the second fetch, as when a read tore.
  const cache = new ShardCache(client, store.keys, async ({ key: retriedKey }) => void (await client.set(retriedKey, original)));
  const loaded = await cache.load('v1');
  t.deepEqual(loaded.images, set.images);
  t.deepEqual(loaded.labels, set.labels);
  t.is(cache.fetched.redis, 3);
});

test('a missing version is DATASET_NOT_FOUND', async (t) => {
  const cache = new ShardCache(client, uniquePrefix('missing'));
  await expectDatasetError(t, cache.load('never-stored'), 'DATASET_NOT_FOUND');
});
