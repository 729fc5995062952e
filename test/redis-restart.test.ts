import test from 'ava';
import { LuaScript } from '../shared/redis/lua-script.ts';
import { pingRedis, redisAnswersWithin } from '../shared/redis/ping-redis.ts';
import { startTestRedis } from './helpers/redis-server.ts';

const INCREMENT_BY = new LuaScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`);

test('an ioredis client survives a graceful Redis restart and finds its data again', async (t) => {
  const redis = await startTestRedis({ persist: true });
  t.teardown(() => redis.close());
  const client = redis.connect('restart-graceful');
  await client.set('answer', '42');
  const pidBefore = redis.server.pid;

  await redis.restart({ mode: 'graceful', downMs: 200 });

  t.not(redis.server.pid, pidBefore, 'a new redis-server process');
  t.is(await client.get('answer'), '42');
  t.is(await client.ping(), 'PONG');
});

test('a command sent while Redis is down completes once it is back', async (t) => {
  const redis = await startTestRedis({ persist: false });
  t.teardown(() => redis.close());
  const client = redis.connect('restart-queued');
  await client.ping();

  await redis.server.stop('kill');
  t.false(await pingRedis(redis.url, 200));
  const pending = client.incr('during-outage');
  await new Promise((resolve) => setTimeout(resolve, 400));
  await redis.restart();

  t.is(await pending, 1);
  t.true(redis.errors.length > 0, 'the outage was reported to the error hook');
});

test('a Lua script still runs after a crash emptied the script cache', async (t) => {
  const redis = await startTestRedis({ persist: false });
  t.teardown(() => redis.close());
  const client = redis.connect('restart-lua');
  t.is(await INCREMENT_BY.run(client, ['n'], [5]), 5);

  await redis.restart({ mode: 'kill' });

  t.deepEqual(await client.script('EXISTS', INCREMENT_BY.sha), [0]);
  t.is(await INCREMENT_BY.run(client, ['n'], [7]), 7);
  t.deepEqual(await client.script('EXISTS', INCREMENT_BY.sha), [1]);
});

// Serial (before the other tests), so that starving this process slows no other test.
test.serial('redisAnswersWithin says a live server answers even when this process is starved most of the time', async (t) => {
  const redis = await startTestRedis({ persist: false });
  t.teardown(() => redis.close());
  // As on a loaded machine: the process runs only about 100 ms of every second. Each time it
  // runs, its timers come due before the answer on its socket is read.
  const busy = () => {
    const until = Date.now() + 900;
    while (Date.now() < until);
  };
  const answer = redisAnswersWithin(redis.url, 5_000);
  busy();
  const starve = setInterval(busy, 100);
  try {
    t.true(await answer);
  } finally {
    clearInterval(starve);
  }
});

test('redisAnswersWithin waits out a restart and gives up on a server that stays away', async (t) => {
  const redis = await startTestRedis({ persist: false });
  t.teardown(() => redis.close());
  await redis.server.stop('kill');
  // Asked while the server is down, with a minute to wait: it can only answer true once the
  // server is back, and it must not give up while the restart below takes its time.
  let answered: boolean | undefined;
  const waiting = redisAnswersWithin(redis.url, 60_000).then((answer) => (answered = answer));
  t.false(await pingRedis(redis.url, 200), 'still down when the wait began');
  await new Promise((resolve) => setTimeout(resolve, 800));
  t.is(answered, undefined, 'still waiting while the server is down');
  await redis.restart();
  t.true(await waiting, 'answered once it was back');

  await redis.server.stop('kill');
  const timeoutMs = 1_000;
  const started = Date.now();
  t.false(await redisAnswersWithin(redis.url, timeoutMs));
  // It gives up after trying until its deadline, less one retry interval (250 ms): a lower
  // bound, which load cannot break. That it gives up at all is the false above.
  const waited = Date.now() - started;
  t.true(waited >= timeoutMs - 250, `gave up after ${waited} ms`);
});
