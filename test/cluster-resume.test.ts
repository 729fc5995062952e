import test from 'ava';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { identicalWeights, newestWeights } from './helpers/checkpoint-weights.ts';
import { existsSync } from 'node:fs';
import { cliEnv, cliErrorCode, jsonLines, REPO_ROOT, runCli, type CliResult } from './helpers/cli.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';
import { listCheckpoints } from '../shared/train/checkpoint-store.ts';
import { RedisKeys } from '../shared/redis/keys.ts';
import { RunStore } from '../shared/run/run-store.ts';
import { rendezvousMembers } from '../worker/rendezvous.ts';
import type { RunRecord } from '../shared/run/run-state.ts';

let redis: TestRedis;
let scratch: string;
test.before(async () => {
  redis = await startTestRedis({ persist: true });
  scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-resume-'));
});
test.after.always(async () => {
  await redis?.close();
  await rm(scratch, { recursive: true, force: true });
});

/** 2 epochs of 10 steps, a checkpoint every 3 steps: the kill lands between checkpoints. */
const FLAGS = [
  '--model',
  'tiny-cnn',
  '--epochs',
  '2',
  '--batch-size',
  '32',
  '--resize',
  '28',
  '--limit-train',
  '320',
  '--limit-test',
  '100',
  '--seed',
  '5',
  '--backend',
  'wasm',
  '--checkpoint-every',
  '3',
  '--json',
];

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('a run whose processes were all killed resumes to the same weights as one never stopped', async (t) => {
  // Its own Redis: this test crashes it, which the other tests here must not see.
  const redis = await startTestRedis({ persist: true });
  t.teardown(() => redis.close());
  const prefix = uniquePrefix('resume');
  const straightDir = path.join(scratch, 'straight');
  const straight = await runCli('coordinator', [
    'launch',
    '--local',
    '--workers',
    '2',
    ...FLAGS,
    '--redis',
    redis.url,
    '--prefix',
    `${prefix}-straight`,
    '--state-dir',
    straightDir,
  ]);
  t.is(straight.code, 0, straight.stderr);
  const straightRun = jsonLines(straight.stdout).at(-1)!.run as string;

  // The same run again, killed (coordinator and workers, SIGKILL) once it checkpointed mid-epoch,
  // and Redis crashes too (it restarts from its append-only file).
  const stateDir = path.join(scratch, 'killed');
  const launch = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'coordinator/main.ts',
      'launch',
      '--local',
      '--workers',
      '2',
      ...FLAGS,
      '--redis',
      redis.url,
      '--prefix',
      prefix,
      '--state-dir',
      stateDir,
    ],
    { cwd: REPO_ROOT, env: cliEnv(), detached: true, stdio: 'ignore' },
  );
  const exited = new Promise((resolve) => launch.on('exit', resolve));
  let checkpointDir = '';
  await waitFor(async () => {
    const ids = await readdir(path.join(stateDir, 'checkpoints')).catch(() => [] as string[]);
    if (ids.length === 0) return false;
    checkpointDir = path.join(stateDir, 'checkpoints', ids[0]);
    return (await listCheckpoints(checkpointDir)).length > 0;
  }, 600_000); // a backstop for a launch that never checkpoints, not a time limit: ava's 5-minute timeout usually fires first
  process.kill(-launch.pid!, 'SIGKILL');
  await exited;
  await redis.restart({ mode: 'kill' });
  const runId = path.basename(checkpointDir);
  const killedAt = (await listCheckpoints(checkpointDir)).map((dir) => path.basename(dir));
  t.log(`killed after checkpoints ${killedAt.join(', ')}`);

  const resumed = await runCli('coordinator', [
    'resume',
    runId,
    '--force',
    '--local',
    '--json',
    '--redis',
    redis.url,
    '--prefix',
    prefix,
    '--state-dir',
    stateDir,
  ]);
  t.is(resumed.code, 0, resumed.stderr);
  const lines = jsonLines(resumed.stdout);
  t.deepEqual(lines.at(-1), { run: runId, status: 'completed' });
  t.true(
    identicalWeights(await newestWeights(checkpointDir), await newestWeights(path.join(straightDir, 'checkpoints', straightRun))),
    'final weights are bit-identical',
  );

  const status = await runCli('coordinator', ['status', runId, '--json', '--redis', redis.url, '--prefix', prefix]);
  const record = JSON.parse(status.stdout) as RunRecord;
  t.is(record.state, 'completed');
  t.is(record.generation, 1);
  t.is(record.history.length, 2);
});

test('status, cancel and resume of an unknown run fail with RUN_NOT_FOUND', async (t) => {
  for (const command of ['status', 'cancel', 'resume']) {
    const result = await runCli('coordinator', [command, 'run-nope', '--redis', redis.url, '--prefix', uniquePrefix('nope')]);
    t.is(result.code, 1);
    t.is(cliErrorCode(result.stderr), 'RUN_NOT_FOUND', `${command}: ${result.stderr}`);
  }
});

test('cancel stops a running run after the current step, once', async (t) => {
  const prefix = uniquePrefix('cancel');
  const stateDir = path.join(scratch, 'cancel');
  const flags = [
    '--model',
    'tiny-cnn',
    '--epochs',
    '500', // far more than the cancel needs to land in: over shared memory an epoch of tiny-cnn takes a fraction of a second
    '--batch-size',
    '32',
    '--resize',
    '28',
    '--limit-train',
    '320',
    '--limit-test',
    '32',
    '--backend',
    'wasm',
    '--json',
  ];
  let runId = '';
  const launch = runCli('coordinator', ['launch', '--local', '--workers', '2', ...flags, '--redis', redis.url, '--prefix', prefix, '--state-dir', stateDir], {
    onStdoutLine: (line) => {
      const parsed = JSON.parse(line) as { epoch?: number };
      if (parsed.epoch === 1) void cancelSoon();
    },
  });
  const cancelSoon = async () => {
    const list = await runCli('coordinator', ['list', '--json', '--redis', redis.url, '--prefix', prefix]);
    runId = (JSON.parse(list.stdout) as { run: string }[])[0].run;
    const cancel = await runCli('coordinator', ['cancel', runId, '--redis', redis.url, '--prefix', prefix]);
    t.is(cancel.code, 0, cancel.stderr);
  };
  const result = await launch;
  t.is(result.code, 1, 'a cancelled run is not a success');
  const final = jsonLines(result.stdout).at(-1)!;
  t.is(final.status, 'cancelled');
  const epochs = jsonLines(result.stdout).filter((line) => 'epoch' in line).length;
  t.true(epochs < 500, `stopped after ${epochs} epochs`);
  const again = await runCli('coordinator', ['cancel', runId, '--redis', redis.url, '--prefix', prefix]);
  t.is(again.code, 1);
  t.is(cliErrorCode(again.stderr), 'RUN_BAD_TRANSITION', `a cancelled run cannot be cancelled again: ${again.stderr}`);
});

test('Ctrl-C on launch --local stops the coordinator and its workers cleanly and the run resumes', async (t) => {
  const prefix = uniquePrefix('ctrl-c');
  const stateDir = path.join(scratch, 'ctrl-c');
  const flags = [
    '--model',
    'tiny-cnn',
    '--epochs',
    '6',
    '--batch-size',
    '32',
    '--resize',
    '28',
    '--limit-train',
    '320',
    '--limit-test',
    '32',
    '--seed',
    '3',
    '--backend',
    'wasm',
    '--json',
  ];
  // Its own process group, as a terminal's foreground job: Ctrl-C sends SIGINT to the whole group.
  const launch = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'coordinator/main.ts',
      'launch',
      '--local',
      '--workers',
      '2',
      ...flags,
      '--redis',
      redis.url,
      '--prefix',
      prefix,
      '--state-dir',
      stateDir,
    ],
    {
      cwd: REPO_ROOT,
      env: cliEnv(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  launch.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let interrupted = false;
  launch.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    if (!interrupted && stdout.includes('"epoch":1')) {
      interrupted = true;
      process.kill(-launch.pid!, 'SIGINT');
    }
  });
  const code = await new Promise<number | null>((resolve) => launch.on('exit', resolve));
  t.true(interrupted, `the run never reported an epoch: ${stderr}`);
  t.is(code, 130, stderr);
  const final = jsonLines(stdout).at(-1)!;
  t.is(final.status, 'interrupted');
  const runId = final.run as string;
  t.throws(() => process.kill(-launch.pid!, 0), { code: 'ESRCH' }, 'no process of the group is left');
  const checkpoints = await listCheckpoints(path.join(stateDir, 'checkpoints', runId));
  t.true(checkpoints.length > 0, `the workers checkpointed on the way out; ${stateDir}: ${(await readdir(stateDir, { recursive: true })).join(',')}`);

  const resumed = await runCli('coordinator', ['resume', runId, '--local', '--json', '--redis', redis.url, '--prefix', prefix, '--state-dir', stateDir]);
  t.is(resumed.code, 0, resumed.stderr);
  t.deepEqual(jsonLines(resumed.stdout).at(-1), { run: runId, status: 'completed' });
  const record = JSON.parse((await runCli('coordinator', ['status', runId, '--json', '--redis', redis.url, '--prefix', prefix])).stdout) as RunRecord;
  t.is(record.state, 'completed');
  t.is(record.history.length, 6);
});

test('a worker killed mid-run fails the run at once, naming the lost peer, and resume finishes it', async (t) => {
  const prefix = uniquePrefix('peer-death');
  const stateDir = path.join(scratch, 'peer-death');
  const common = ['--redis', redis.url, '--prefix', prefix];
  const flags = [
    // No automatic restart (test/cluster-recovery.test.ts has those): the failure waits for resume.
    '--max-restarts',
    '0',
    '--model',
    'tiny-cnn',
    '--epochs',
    '12',
    '--batch-size',
    '32',
    '--resize',
    '28',
    '--limit-train',
    '320',
    '--limit-test',
    '32',
    '--seed',
    '4',
    '--backend',
    'wasm',
    '--json',
  ];
  let killedAt = 0;
  const kill = async (): Promise<void> => {
    const client = redis.connect('peer-death');
    const [run] = await new RunStore(client, prefix).list();
    const members = await rendezvousMembers(client, new RedisKeys(prefix), run.id, 0);
    client.disconnect();
    killedAt = Date.now();
    process.kill(members.find((member) => member.rank === 1)!.pid, 'SIGKILL');
  };
  let killing: Promise<void> | undefined;
  const launch = await runCli('coordinator', ['launch', '--local', '--workers', '2', ...flags, ...common, '--state-dir', stateDir], {
    onStdoutLine: (line) => {
      if ((JSON.parse(line) as { epoch?: number }).epoch === 1) killing ??= kill();
    },
  });
  const failedAfterMs = Date.now() - killedAt;
  await killing;
  t.is(launch.code, 1, launch.stderr);
  const final = jsonLines(launch.stdout).at(-1)!;
  t.is(final.status, 'failed');
  // Whether rank 0 first sees its stream to rank 1 refused or rank 1's stream to it break off is
  // a race; either way the failure is a lost peer, and with two workers both of rank 0's
  // neighbours are rank 1. Rank 0, the one left alive, records it. A loss noticed only by the
  // collective timeout would be COLLECTIVE_TIMEOUT.
  t.like(final.failure, { code: 'COLLECTIVE_PEER_LOST', rank: 0, peerRank: 1 }, `error: ${final.error as string}`);
  // The code above is the proof of detection: a run that waited out its collective timeout
  // would fail with COLLECTIVE_TIMEOUT, not with the lost peer named.
  const runId = final.run as string;
  const failed = JSON.parse((await runCli('coordinator', ['status', runId, '--json', ...common])).stdout) as RunRecord;
  t.deepEqual(failed.failure, final.failure, 'status --json shows the same typed failure');

  const resumed = await runCli('coordinator', ['resume', runId, '--local', '--json', ...common, '--state-dir', stateDir]);
  t.is(resumed.code, 0, resumed.stderr);
  t.deepEqual(jsonLines(resumed.stdout).at(-1), { run: runId, status: 'completed' });
  const record = JSON.parse((await runCli('coordinator', ['status', runId, '--json', ...common])).stdout) as RunRecord;
  t.is(record.history.length, 12);
  t.is(record.generation, 1);
  t.is(record.failure, undefined, 'a resume clears the failure');
  t.log(`the launch ended ${failedAfterMs} ms after rank 1 was killed`);
});

/** Connections the server has accepted since it started (our own client's included). */
async function connectionsReceived(client: ReturnType<TestRedis['connect']>): Promise<number> {
  return Number(/total_connections_received:(\d+)/.exec(await client.info('stats'))![1]);
}

test('status --follow --local beside a running launch --local shares its Redis, and status --local reads the run afterwards', async (t) => {
  const stateDir = path.join(scratch, 'local-state');
  const prefix = uniquePrefix('local-state');
  // A decoy where --local looks for a running Redis: with --redis-probe off no command may even
  // connect to it; they use the Redis of their state directory.
  const decoy = await startTestRedis({ persist: false });
  t.teardown(() => decoy.close());
  const decoyClient = decoy.connect('decoy-check');
  const decoyConnections = await connectionsReceived(decoyClient);
  const env = { REDIS_URL: '', FMNIST_REDIS_PROBE: decoy.url };
  const local = ['--local', '--redis-probe', 'off', '--state-dir', stateDir, '--prefix', prefix];
  const marker = path.join(stateDir, 'redis', 'server.json');
  const flags = [
    '--model',
    'tiny-cnn',
    '--epochs',
    '6',
    '--batch-size',
    '32',
    '--resize',
    '28',
    '--limit-train',
    '320',
    '--limit-test',
    '32',
    '--backend',
    'wasm',
    '--json',
  ];
  let follower: Promise<CliResult> | undefined;
  let markerDuringRun = false;
  const launch = await runCli('coordinator', ['launch', '--workers', '2', ...flags, ...local], {
    env,
    onStdoutLine: (line) => {
      if ((JSON.parse(line) as { epoch?: number }).epoch !== 1 || follower) return;
      markerDuringRun = existsSync(marker);
      follower = (async () => {
        const list = await runCli('coordinator', ['list', '--json', ...local], { env });
        const runId = (JSON.parse(list.stdout) as { run: string }[])[0].run;
        return runCli('coordinator', ['status', runId, '--follow', '--json', ...local], { env });
      })();
    },
  });
  t.is(launch.code, 0, launch.stderr);
  const runId = jsonLines(launch.stdout).at(-1)!.run as string;
  const followed = await follower!;
  t.is(followed.code, 0, followed.stderr);
  t.deepEqual(jsonLines(followed.stdout).at(-1), { run: runId, status: 'completed' }, 'the follower saw the run of the launch');
  t.true(markerDuringRun, 'the launch ran the Redis of its state directory');
  t.false(existsSync(marker), 'the launch stopped its Redis');

  const status = await runCli('coordinator', ['status', runId, '--json', ...local], { env });
  t.is(status.code, 0, status.stderr);
  const record = JSON.parse(status.stdout) as RunRecord;
  t.is(record.state, 'completed');
  t.is(record.history.length, 6);
  t.is(await connectionsReceived(decoyClient), decoyConnections, 'no command connected to the decoy');
  t.is(await decoyClient.dbsize(), 0);

  // The check above can fail: without --redis-probe off, --local takes the decoy.
  const probing = await runCli('coordinator', ['list', '--json', '--local', '--state-dir', stateDir, '--prefix', prefix], { env });
  t.is(probing.code, 0, probing.stderr);
  t.deepEqual(JSON.parse(probing.stdout), [], 'the decoy holds no runs');
  t.true((await connectionsReceived(decoyClient)) > decoyConnections, 'a probing command connects to the decoy');
});

test('a reader that goes away (| head -1) stops launch --local like Ctrl-C: workers and Redis stopped, run interrupted', async (t) => {
  const stateDir = path.join(scratch, 'closed-stdout');
  const local = ['--local', '--state-dir', stateDir, '--prefix', uniquePrefix('closed-stdout')];
  const marker = path.join(stateDir, 'redis', 'server.json');
  const flags = [
    '--model',
    'tiny-cnn',
    '--epochs',
    '30',
    '--batch-size',
    '32',
    '--resize',
    '28',
    '--limit-train',
    '320',
    '--limit-test',
    '32',
    '--backend',
    'wasm',
    '--json',
  ];
  const launch = spawn(process.execPath, ['--import', 'tsx', 'coordinator/main.ts', 'launch', '--workers', '2', ...flags, ...local], {
    cwd: REPO_ROOT,
    env: cliEnv({ REDIS_URL: '' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  launch.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let markerWhileRunning = false;
  launch.stdout.once('data', () => {
    markerWhileRunning = existsSync(marker);
    launch.stdout.destroy(); // as `head -1` exits after the first line
  });
  const code = await new Promise<number | null>((resolve) => launch.on('exit', resolve));
  t.is(code, 130, stderr);
  t.true(markerWhileRunning, 'the launch ran the Redis of its state directory');
  t.false(existsSync(marker), 'the Redis it started was stopped');
  const list = await runCli('coordinator', ['list', '--json', ...local], { env: { REDIS_URL: '' } });
  t.is(list.code, 0, list.stderr);
  const [run] = JSON.parse(list.stdout) as { status: string; epochs: number }[];
  t.is(run.status, 'interrupted');
  t.true(run.epochs < 30, `stopped after ${run.epochs} epochs`);
});
