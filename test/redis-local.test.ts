import { spawnSync } from 'node:child_process';
import { access, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { RedisError } from '../shared/redis/redis-error.ts';
import { connectRedis, ensureRedis } from '../shared/redis/local-redis.ts';
import { pingRedis, redisAnswersWithin } from '../shared/redis/ping-redis.ts';
import { freePort } from '../shared/redis/redis-server-process.ts';
import { startTestRedis, type TestRedis } from './helpers/redis-server.ts';

let shared: TestRedis;
test.before(async () => {
  shared = await startTestRedis({ persist: false });
});
test.after.always(() => shared?.close());

async function deadUrl(): Promise<string> {
  return `redis://127.0.0.1:${await freePort()}`;
}

test('ensureRedis starts its own redis-server when nothing answers the probe, and close stops it', async (t) => {
  const probeUrl = await deadUrl();
  const redis = await ensureRedis({ env: {}, probeUrl });
  t.true(redis.started);
  t.not(redis.url, probeUrl);
  const client = connectRedis(redis.url, 'ensure-test', { onError: () => {} });
  t.is(await client.ping(), 'PONG');
  const [, dir] = (await client.config('GET', 'dir')) as [string, string];
  client.disconnect();
  await access(dir);
  const closing = redis.close();
  t.is(redis.close(), closing, 'a second close returns the same promise');
  await closing;
  await redis.close();
  t.false(await pingRedis(redis.url, 300));
  await t.throwsAsync(access(dir), { code: 'ENOENT' });
});

test('ensureRedis uses a server that answers the probe and leaves it running on close', async (t) => {
  // The probe's patience is not the point here, and a loaded machine can exceed its 500 ms.
  const redis = await ensureRedis({ env: {}, probeUrl: shared.url, probeTimeoutMs: 10_000 });
  t.false(redis.started);
  t.is(redis.url, shared.url);
  await redis.close();
  t.true(await redisAnswersWithin(shared.url, 10_000));
});

test('ensureRedis prefers REDIS_URL over the probe', async (t) => {
  const redis = await ensureRedis({ env: { REDIS_URL: shared.url }, probeUrl: await deadUrl() });
  t.deepEqual({ url: redis.url, started: redis.started }, { url: shared.url, started: false });
});

test('ensureRedis refuses a REDIS_URL that does not answer instead of starting another server', async (t) => {
  const error = await t.throwsAsync(ensureRedis({ env: { REDIS_URL: await deadUrl() }, probeUrl: shared.url }));
  t.true(error instanceof RedisError);
  t.is((error as RedisError).code, 'REDIS_UNAVAILABLE');
});

test('a started server with a dataDir keeps its data for the next ensureRedis', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'fmnist-redis-data-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const first = await ensureRedis({ env: {}, probeUrl: await deadUrl(), dataDir });
  const writer = connectRedis(first.url, 'writer', { onError: () => {} });
  await writer.set('kept', 'across restarts');
  writer.disconnect();
  await first.close();
  await access(dataDir);

  const second = await ensureRedis({ env: {}, probeUrl: await deadUrl(), dataDir });
  t.teardown(() => second.close());
  t.true(second.started);
  const reader = connectRedis(second.url, 'reader', { onError: () => {} });
  t.is(await reader.get('kept'), 'across restarts');
  reader.disconnect();
});

test('a second ensureRedis on a data directory whose server runs uses that server; a stale marker is ignored', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'fmnist-redis-shared-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const first = await ensureRedis({ env: {}, probeUrl: await deadUrl(), dataDir });
  t.teardown(() => first.close());
  const second = await ensureRedis({ env: {}, probeUrl: await deadUrl(), dataDir });
  t.is(second.url, first.url);
  t.false(second.started, 'the second one does not own the server');
  await second.close();
  t.true(await redisAnswersWithin(first.url, 10_000), "closing the second leaves the first one's server running");

  const url = first.url;
  await first.close();
  await writeFile(join(dataDir, 'server.json'), JSON.stringify({ url, pid: 1 })); // as left by a crashed owner
  const third = await ensureRedis({ env: {}, probeUrl: await deadUrl(), dataDir });
  t.true(third.started, 'a marker whose server does not answer is not trusted');
  await third.close();
  await writeFile(join(dataDir, 'server.json'), '{"url": "redis://127.0'); // a write cut short
  const fourth = await ensureRedis({ env: {}, probeUrl: await deadUrl(), dataDir });
  t.teardown(() => fourth.close());
  t.true(fourth.started, 'an unreadable marker is ignored');
});

test('two commands starting on one data directory at once share one server', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'fmnist-redis-race-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const probeUrl = await deadUrl();
  const both = await Promise.all([ensureRedis({ env: {}, probeUrl, dataDir }), ensureRedis({ env: {}, probeUrl, dataDir })]);
  t.teardown(() => Promise.all(both.map((redis) => redis.close())));
  t.is(both[0].url, both[1].url);
  t.deepEqual(both.map((redis) => redis.started).sort(), [false, true], 'one started it, the other uses it');
  t.deepEqual(
    (await readdir(dataDir)).filter((name) => name.startsWith('server.lock')),
    [],
    'the lock is let go',
  );
});

test('a lock left by a process that died is taken over', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'fmnist-redis-stale-lock-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const gone = spawnSync(process.execPath, ['-e', '']).pid;
  await writeFile(join(dataDir, 'server.lock'), String(gone));
  const redis = await ensureRedis({ env: {}, probeUrl: await deadUrl(), dataDir });
  t.teardown(() => redis.close());
  t.true(redis.started);
});

test('ensureRedis reports a missing redis-server executable', async (t) => {
  const error = await t.throwsAsync(ensureRedis({ env: {}, probeUrl: await deadUrl(), executable: '/nonexistent/redis-server' }));
  t.true(error instanceof RedisError);
  t.is((error as RedisError).code, 'REDIS_SERVER_NOT_FOUND');
});

test('connectRedis names the connection after the role and is set up for BullMQ', async (t) => {
  const client = connectRedis(shared.url, 'coordinator', { onError: () => {} });
  t.teardown(() => client.disconnect());
  t.is(await client.client('GETNAME'), `fmnist:coordinator:${process.pid}`);
  t.is(client.options.maxRetriesPerRequest, null);
  t.true(client.options.enableReadyCheck);
});
