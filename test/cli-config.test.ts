/**
 * `train` and `launch` check their training flags with the same shared/config functions: a
 * bad value is refused by both with the same exit code and error code, and `launch` refuses it
 * before it stores a run (it used to accept `--backend quantum` and let every worker fail).
 * Real CLI processes, a real Redis for `launch`.
 */
import test from 'ava';
import type { Redis } from 'ioredis';
import { RunStore } from '../shared/run/run-store.ts';
import { runCli, type CliResult } from './helpers/cli.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

let redis: TestRedis;
let client: Redis;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
  client = redis.connect('cli-config');
});
test.after.always(() => redis?.close());

/** The code in the CLI's one-line error, `error [CODE]: ...`. */
function errorCode(result: CliResult): string | undefined {
  return /^error \[([A-Z_]+)\]/m.exec(result.stderr)?.[1];
}

const BAD_FLAGS: string[][] = [
  ['--backend', 'quantum'],
  ['--threads', '0'],
  ['--micro-batch', '0'],
  ['--model', 'vgg'],
  ['--epochs', 'ten'],
  ['--lr', '-1'],
  ['--nonfinite', 'ignore'],
  ['--grad-compression', 'fp8'],
];

for (const flags of BAD_FLAGS) {
  test.serial(`train and launch both refuse ${flags.join(' ')} with CONFIG_INVALID, and launch stores no run`, async (t) => {
    const prefix = uniquePrefix('cli-config');
    const [train, launch] = await Promise.all([
      runCli('coordinator', ['train', ...flags]),
      runCli('coordinator', ['launch', '--redis', redis.url, '--prefix', prefix, '--workers', '1', ...flags], { env: { REDIS_URL: '' } }),
    ]);
    t.is(train.code, 1, train.stderr);
    t.is(launch.code, 1, launch.stderr);
    t.is(errorCode(train), 'CONFIG_INVALID', train.stderr);
    t.is(errorCode(launch), 'CONFIG_INVALID', launch.stderr);
    t.is(launch.stdout, '', 'no run id was printed');
    t.deepEqual(await new RunStore(client, prefix).list(), [], 'no run was stored');
  });
}

test.serial('the same flags, valid, make launch store a run (the check above can tell the difference)', async (t) => {
  const prefix = uniquePrefix('cli-config-ok');
  const result = await runCli('coordinator', [
    'launch',
    '--redis',
    redis.url,
    '--prefix',
    prefix,
    '--workers',
    '1',
    '--backend',
    'cpu',
    '--threads',
    '1',
    '--micro-batch',
    '8',
    '--model',
    'tiny-cnn',
    '--epochs',
    '1',
    '--lr',
    '0.1',
    '--limit-train',
    '64',
    '--limit-test',
    '16',
    '--resize',
    '28',
    '--nonfinite',
    'skip',
    '--grad-compression',
    'fp16',
    '--json',
  ]);
  t.is(result.code, 0, result.stderr);
  const [run] = await new RunStore(client, prefix).list();
  t.like(run?.config, { backend: 'cpu', threads: 1, microBatch: 8, model: 'tiny-cnn', epochs: 1, lr: 0.1, nonfinite: 'skip', gradCompression: 'fp16' });
});

test.serial('train refuses --grad-compression fp16 (one process sends no gradients) with CONFIG_INVALID', async (t) => {
  const train = await runCli('coordinator', ['train', '--grad-compression', 'fp16']);
  t.is(train.code, 1, train.stderr);
  t.is(errorCode(train), 'CONFIG_INVALID', train.stderr);
});
