/**
 * The cluster as separate long-running services, as a deployment runs it: `coordinator serve`,
 * two `worker` processes, then `coordinator launch` without --local queues a run that they
 * train, while `coordinator status --follow` attaches from another process. SIGTERM then stops
 * every service cleanly (exit status 0).
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cliErrorCode, jsonLines, printed, runCli, type CliResult } from './helpers/cli.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';
import { listCheckpoints } from '../shared/train/checkpoint-store.ts';
import type { RunRecord } from '../shared/run/run-state.ts';

let redis: TestRedis;
let scratch: string;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
  scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-services-'));
});
test.after.always(async () => {
  await redis?.close();
  await rm(scratch, { recursive: true, force: true });
});

test('serve, two workers and launch train a run that status --follow sees through; SIGTERM stops each service cleanly', async (t) => {
  const prefix = uniquePrefix('services');
  const common = ['--redis', redis.url, '--prefix', prefix];
  const checkpointRoot = path.join(scratch, 'checkpoints');
  // A free metrics port: the default 9400 may be taken by another test run on this machine.
  const serve = runCli('coordinator', ['serve', ...common, '--metrics-port', 'auto']);
  const workers = [0, 1].map((k) => runCli('worker', [...common, '--checkpoint-root', checkpointRoot, '--backend', 'wasm', '--name', `svc-${k}`]));
  const services = [serve, ...workers];
  t.teardown(() => {
    for (const service of services) service.child.kill('SIGKILL');
  });
  await Promise.all(workers.map((worker) => printed(worker, /waiting for jobs/)));

  const flags = [
    '--workers',
    '2',
    '--model',
    'tiny-cnn',
    '--epochs',
    '2',
    '--batch-size',
    '32',
    '--resize',
    '28',
    '--limit-train',
    '256',
    '--limit-test',
    '64',
    '--seed',
    '9',
    '--backend',
    'wasm',
    '--json',
  ];
  let follower: Promise<CliResult> | undefined;
  const launch = await runCli('coordinator', ['launch', '--follow', ...flags, ...common], {
    onStdoutLine: (line) => {
      const parsed = JSON.parse(line) as { epoch?: number };
      if (parsed.epoch !== 1 || follower) return;
      follower = (async () => {
        const list = await runCli('coordinator', ['list', '--json', ...common]);
        const runId = (JSON.parse(list.stdout) as { run: string }[])[0].run;
        return runCli('coordinator', ['status', runId, '--follow', '--json', ...common]);
      })();
    },
  });
  t.is(launch.code, 0, launch.stderr);
  const lines = jsonLines(launch.stdout);
  t.deepEqual(
    lines.filter((line) => 'epoch' in line).map((line) => [line.epoch, line.workers]),
    [
      [1, 2],
      [2, 2],
    ],
  );
  const runId = lines.at(-1)!.run as string;
  t.is(lines.at(-1)!.status, 'completed');
  t.true((await listCheckpoints(path.join(checkpointRoot, runId))).length > 0, 'rank 0 wrote checkpoints where the workers were told to');

  t.truthy(follower, 'status --follow was started during the run');
  const followed = await follower!;
  t.is(followed.code, 0, followed.stderr);
  const seen = jsonLines(followed.stdout);
  t.deepEqual(seen.at(-1), { run: runId, status: 'completed' });
  t.true(
    seen.some((line) => line.epoch === 2),
    'the follower printed the epoch that ended after it attached',
  );
  const record = JSON.parse((await runCli('coordinator', ['status', runId, '--json', ...common])).stdout) as RunRecord;
  t.is(record.state, 'completed');
  t.is(record.history.length, 2);

  for (const service of services) service.child.kill('SIGTERM');
  const exits = await Promise.all(services.map((service) => service));
  t.deepEqual(
    exits.map((exit) => exit.code),
    [0, 0, 0],
    exits.map((exit) => exit.stderr).join('\n'),
  );
});

test('commands give up with REDIS_UNAVAILABLE when Redis does not answer, instead of waiting for it', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = server.address() as net.AddressInfo;
      server.close(() => resolve(free));
    });
  });
  const nowhere = ['--redis', `redis://127.0.0.1:${port}`];
  // In parallel: each command either gives up by itself (start-up, then a 5 s wait for PONG), or
  // would wait for ever and is killed after 4 minutes, generous beside those seconds even on a
  // loaded machine (exit code null, no error line), which fails the checks below.
  const commands = [['launch', '--workers', '2', '--follow'], ['status', 'run-x'], ['list'], ['cancel', 'run-x'], ['resume', 'run-x']];
  const results = await Promise.all(commands.map((args) => runCli('coordinator', [...args, ...nowhere], { timeoutMs: 240_000 })));
  for (const [i, result] of results.entries()) {
    t.is(result.code, 1, `${commands[i].join(' ')}: ${result.stderr}`);
    t.is(cliErrorCode(result.stderr), 'REDIS_UNAVAILABLE', `${commands[i].join(' ')}: ${result.stderr}`);
  }
});
