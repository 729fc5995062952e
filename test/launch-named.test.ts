/**
 * `coordinator launch --run-id NAME --if-exists resume`, as the compose stack's `launch` service
 * runs it on every start, through the real CLI against a real redis-server: the first start
 * creates the run and queues its jobs, a restart while it trains queues nothing, a restart after
 * the workers were stopped resumes it in a new generation, and a completed run stays completed.
 */
import test from 'ava';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { RedisKeys } from '../shared/redis/keys.ts';
import { RunStore } from '../shared/run/run-store.ts';
import { TRAIN_QUEUE } from '../shared/run/train-job.ts';
import { jsonLines, runCli } from './helpers/cli.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

let redis: TestRedis;
let client: Redis;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
  client = redis.connect('launch-named-test');
});
test.after.always(() => redis?.close());

/** The compose `launch` service's command, with `.env`'s unset knobs passed as empty values. */
function launchArgs(prefix: string, extra: string[] = []): string[] {
  return [
    'launch',
    '--run-id',
    'fmnist',
    '--if-exists',
    'resume',
    '--workers',
    '2',
    '--model',
    'tiny-cnn',
    '--epochs',
    '1',
    '--batch-size',
    '64',
    '--resize',
    '28',
    '--limit-train',
    '1024',
    '--limit-test',
    '',
    '--micro-batch',
    '',
    '--redis',
    redis.url,
    '--prefix',
    prefix,
    '--json',
    ...extra,
  ];
}

async function launch(prefix: string): Promise<{ code: number | null; line: Record<string, unknown> }> {
  const result = await runCli('coordinator', launchArgs(prefix), { env: { TRAIN_BACKEND: '' } });
  const lines = jsonLines(result.stdout);
  if (lines.length !== 1) throw new Error(`launch printed ${lines.length} lines; stderr: ${result.stderr}`);
  return { code: result.code, line: lines[0] };
}

async function jobIds(prefix: string): Promise<string[]> {
  const queue = new Queue(TRAIN_QUEUE, { connection: client.duplicate(), prefix: new RedisKeys(prefix).queuePrefix() });
  try {
    return (await queue.getJobs(['waiting', 'active', 'completed', 'failed'])).map((job) => job.id!).sort();
  } finally {
    await queue.close();
    await (await queue.client).quit();
  }
}

test('every start of the stack launches the same run: created once, resumed after a stop, left alone when completed', async (t) => {
  const prefix = uniquePrefix('launch-named');
  const runs = new RunStore(client, prefix);

  const first = await launch(prefix);
  t.is(first.code, 0);
  t.deepEqual(first.line, { run: 'fmnist', status: 'queued', action: 'created' });
  const created = await runs.get('fmnist');
  t.is(created.config.limitTest, undefined, 'an empty flag is the default');
  t.is(created.config.limitTrain, 1024);
  t.deepEqual(await jobIds(prefix), ['fmnist.g0.s0', 'fmnist.g0.s1']);

  // Restarted while its workers train: nothing new.
  await runs.transition('fmnist', 'running');
  const whileRunning = await launch(prefix);
  t.is(whileRunning.code, 0);
  t.deepEqual(whileRunning.line, { run: 'fmnist', status: 'running', action: 'attached' });
  t.deepEqual(await jobIds(prefix), ['fmnist.g0.s0', 'fmnist.g0.s1']);

  // The stack was stopped: its workers checkpointed and marked the run interrupted.
  await runs.transition('fmnist', 'interrupted');
  const afterStop = await launch(prefix);
  t.is(afterStop.code, 0);
  t.deepEqual(afterStop.line, { run: 'fmnist', status: 'queued', action: 'resumed' });
  t.is((await runs.get('fmnist')).generation, 1);
  t.deepEqual(await jobIds(prefix), ['fmnist.g0.s0', 'fmnist.g0.s1', 'fmnist.g1.s0', 'fmnist.g1.s1']);

  await runs.transition('fmnist', 'running');
  await runs.transition('fmnist', 'completed');
  const afterEnd = await launch(prefix);
  t.is(afterEnd.code, 0);
  t.deepEqual(afterEnd.line, { run: 'fmnist', status: 'completed', action: 'attached' });
  t.is((await runs.get('fmnist')).generation, 1);
  t.is((await jobIds(prefix)).length, 4);
  t.deepEqual(
    (await runs.list()).map((run) => run.id),
    ['fmnist'],
  );
});

test('a changed config under the same run id fails the launch with RUN_CONFIG_MISMATCH', async (t) => {
  const prefix = uniquePrefix('launch-mismatch');
  t.is((await launch(prefix)).code, 0);
  const changed = await runCli(
    'coordinator',
    launchArgs(prefix).map((arg) => (arg === '1024' ? '2048' : arg)),
  );
  t.is(changed.code, 1);
  t.regex(changed.stderr, /\[RUN_CONFIG_MISMATCH\]/);
});

test('--if-exists without --run-id is a usage error', async (t) => {
  const result = await runCli('coordinator', ['launch', '--if-exists', 'resume', '--redis', redis.url, '--prefix', uniquePrefix('launch-usage')]);
  t.is(result.code, 1);
  t.regex(result.stderr, /\[CONFIG_INVALID\]/);
});
