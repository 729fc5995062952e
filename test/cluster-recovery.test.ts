import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { identicalWeights, newestWeights } from './helpers/checkpoint-weights.ts';
import { cliEnv, jsonLines, REPO_ROOT, runCli } from './helpers/cli.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';
import { tinyRunFlags } from './helpers/tiny-run.ts';
import { RedisKeys } from '../shared/redis/keys.ts';
import { RunStore } from '../shared/run/run-store.ts';
import type { RunRecord } from '../shared/run/run-state.ts';
import { rendezvousMembers } from '../worker/rendezvous.ts';
import { listCheckpoints } from '../shared/train/checkpoint-store.ts';
import { processAlive } from '../shared/process/process-alive.ts';

let redis: TestRedis;
let scratch: string;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
  scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-recovery-'));
});
test.after.always(async () => {
  await redis?.close();
  await rm(scratch, { recursive: true, force: true });
});

/**
 * 3 epochs of 10 steps of tiny-cnn, a checkpoint after every step: whatever step a kill lands
 * in, the run continues from the step before it, and its final weights are those of a run
 * never stopped.
 */
const FLAGS = tinyRunFlags({ seed: 6, 'checkpoint-every': 1 });

/** `launch --local --workers 2` of a run with these flags, on the test's Redis. */
function localLaunch(flags: string[], prefix: string, stateDir: string): string[] {
  return ['launch', '--local', '--workers', '2', ...flags, '--redis', redis.url, '--prefix', prefix, '--state-dir', stateDir];
}

/** The pid of `rank` in the run's generation `generation`, as the rendezvous recorded it. */
async function pidOfRank(prefix: string, generation: number, rank: number): Promise<{ runId: string; pid: number }> {
  const client = redis.connect('recovery-test');
  try {
    const [run] = await new RunStore(client, prefix).list();
    const members = await rendezvousMembers(client, new RedisKeys(prefix), run.id, generation);
    return { runId: run.id, pid: members.find((member) => member.rank === rank)!.pid };
  } finally {
    client.disconnect();
  }
}

test('a worker killed mid-run is replaced and the run restarts itself to the weights of a run never stopped', async (t) => {
  const straightDir = path.join(scratch, 'straight');
  const straight = await runCli('coordinator', localLaunch(FLAGS, uniquePrefix('straight'), straightDir));
  t.is(straight.code, 0, straight.stderr);
  const straightRun = jsonLines(straight.stdout).at(-1)!.run as string;

  const prefix = uniquePrefix('killed');
  const stateDir = path.join(scratch, 'killed');
  let killed: Promise<number> | undefined;
  const launch = await runCli('coordinator', localLaunch(FLAGS, prefix, stateDir), {
    onStdoutLine: (line) => {
      if ((JSON.parse(line) as { epoch?: number }).epoch !== 1) return;
      killed ??= pidOfRank(prefix, 0, 1).then(({ pid }) => {
        process.kill(pid, 'SIGKILL');
        return pid;
      });
    },
  });
  t.truthy(killed, `the run never reported an epoch: ${launch.stderr}`);
  const killedPid = await killed!;
  t.is(launch.code, 0, launch.stderr);
  const final = jsonLines(launch.stdout).at(-1)!;
  t.is(final.status, 'completed');
  const runId = final.run as string;

  const record = JSON.parse((await runCli('coordinator', ['status', runId, '--json', '--redis', redis.url, '--prefix', prefix])).stdout) as RunRecord;
  t.is(record.state, 'completed');
  t.is(record.generation, 1, 'one restart, one new generation');
  t.is(record.restarts.length, 1);
  // Rank 0 survived and recorded the loss of its peer, rank 1 (the only neighbour in a ring of two).
  t.deepEqual(record.restarts[0].cause, { code: 'COLLECTIVE_PEER_LOST', rank: 0, peerRank: 1 });
  t.is(record.restarts[0].generation, 1);
  t.deepEqual(final.restarts, record.restarts, 'the last line of launch --json carries the restarts');
  t.is(record.history.length, 3);
  const survivor = (await pidOfRank(prefix, 0, 0)).pid;
  const nextGeneration = [(await pidOfRank(prefix, 1, 0)).pid, (await pidOfRank(prefix, 1, 1)).pid];
  t.true(nextGeneration.includes(survivor), 'the survivor went back to the queue and took a job of generation 1');
  t.false(nextGeneration.includes(killedPid), 'a new worker process took the other');
  t.true(
    identicalWeights(await newestWeights(path.join(stateDir, 'checkpoints', runId)), await newestWeights(path.join(straightDir, 'checkpoints', straightRun))),
    'final weights are bit-identical to the uninterrupted run',
  );

  const text = await runCli('coordinator', ['status', runId, '--redis', redis.url, '--prefix', prefix]);
  t.regex(text.stdout, /restarts 1 of 3/);
  t.regex(text.stdout, /generation 1 at .*: COLLECTIVE_PEER_LOST on rank 0 \(peer rank 1\)/);
});

test('a hung worker (SIGSTOP) is found by its missing heartbeat, its peer abandons the step, launch --local kills it and the run restarts past it', async (t) => {
  const prefix = uniquePrefix('hung');
  const stateDir = path.join(scratch, 'hung');
  // A short heartbeat timeout; the collective timeout stays the workers' 10 minutes, so only
  // the heartbeat can free rank 0 from its wait.
  const flags = tinyRunFlags({ seed: 7, 'checkpoint-every': 2, 'heartbeat-timeout': 3 });
  let stopped: Promise<{ pid: number; at: number }> | undefined;
  const launch = runCli('coordinator', localLaunch(flags, prefix, stateDir), {
    onStdoutLine: (line) => {
      if ((JSON.parse(line) as { epoch?: number }).epoch !== 1) return;
      stopped ??= pidOfRank(prefix, 0, 1).then(({ pid }) => {
        process.kill(pid, 'SIGSTOP');
        return { pid, at: Date.now() };
      });
    },
  });
  // Whatever happens, a stopped process is not left behind.
  t.teardown(async () => {
    const { pid } = (await stopped?.catch(() => undefined)) ?? { pid: 0 };
    if (pid > 0) {
      for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
        try {
          process.kill(pid, signal);
        } catch {
          // gone already
        }
      }
    }
    launch.child.kill('SIGKILL');
  });
  const restarted = await waitForRestart(prefix);
  const { pid, at } = await stopped!;
  const result = await launch;
  t.is(result.code, 0, result.stderr);
  t.deepEqual(restarted.cause, { code: 'COLLECTIVE_PEER_HUNG', rank: 0, peerRank: 1 });
  t.is(restarted.generation, 1);
  // A lower bound only: the key of rank 1 cannot expire before the timeout less one beat interval.
  t.true(restarted.at - at >= 3_000 - 600, `restarted ${restarted.at - at} ms after the stop`);
  // launch --local killed the stopped process (it would hold its slot) and started another.
  t.false(processAlive(pid), 'the hung worker was killed');
  const final = jsonLines(result.stdout).at(-1)!;
  t.is(final.status, 'completed');
  const record = JSON.parse(
    (await runCli('coordinator', ['status', final.run as string, '--json', '--redis', redis.url, '--prefix', prefix])).stdout,
  ) as RunRecord;
  // One restart: generation 1 found two workers without waiting for the stopped one.
  t.is(record.restarts.length, 1);
  t.is(record.generation, 1);
  t.is(record.config.heartbeatTimeoutMs, 3_000);
});

/** The first automatic restart of the run under `prefix`, once there is one. */
async function waitForRestart(prefix: string): Promise<RunRecord['restarts'][number]> {
  const client = redis.connect('recovery-restart');
  try {
    const store = new RunStore(client, prefix);
    for (;;) {
      const [run] = await store.list();
      if (run?.restarts[0]) return run.restarts[0];
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    client.disconnect();
  }
}

test('when every process is killed at once, a coordinator started again resumes the running run by itself', async (t) => {
  const prefix = uniquePrefix('all-killed');
  const stateDir = path.join(scratch, 'all-killed');
  const checkpointRoot = path.join(stateDir, 'checkpoints');
  const flags = tinyRunFlags({ seed: 8, 'checkpoint-every': 2, 'heartbeat-timeout': 3 });
  // Its own process group, so that one kill takes the coordinator and both workers at once.
  const launch = spawn(process.execPath, ['--import', 'tsx', 'coordinator/main.ts', ...localLaunch(flags, prefix, stateDir)], {
    cwd: REPO_ROOT,
    env: cliEnv(),
    detached: true,
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => launch.on('exit', resolve));
  t.teardown(() => killGroup(launch.pid!));
  const runId = await firstCheckpointedRun(checkpointRoot);
  killGroup(launch.pid!);
  await exited;
  const client = redis.connect('all-killed');
  t.teardown(() => client.disconnect());
  const runs = new RunStore(client, prefix);
  t.is((await runs.get(runId)).state, 'running', 'nobody was left to record the loss');

  // The cluster comes back as a deployment restarts it: a coordinator service and two workers.
  const common = ['--redis', redis.url, '--prefix', prefix];
  const serve = runCli('coordinator', ['serve', ...common, '--metrics-port', 'off']);
  const workers = [0, 1].map((k) =>
    runCli('worker', [...common, '--checkpoint-root', checkpointRoot, '--backend', 'wasm', '--metrics-port', 'off', '--name', `back-${k}`]),
  );
  t.teardown(() => [serve, ...workers].forEach((service) => service.child.kill('SIGKILL')));
  const followed = await runCli('coordinator', ['status', runId, '--follow', '--json', ...common]);
  t.is(followed.code, 0, followed.stderr);
  const record = await runs.get(runId);
  t.is(record.state, 'completed');
  t.is(record.generation, 1, 'resumed once, without resume --force');
  t.deepEqual(
    record.restarts.map((restart) => restart.cause),
    [{ code: 'RUN_WORKERS_LOST' }],
  );
  t.is(record.history.length, 3);
  for (const service of [serve, ...workers]) service.child.kill('SIGTERM');
  const codes = (await Promise.all([serve, ...workers])).map((result) => result.code);
  t.deepEqual(codes, [0, 0, 0], 'each service stops cleanly');
});

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** The id of the first run under `checkpointRoot` once it holds a checkpoint. */
async function firstCheckpointedRun(checkpointRoot: string): Promise<string> {
  for (;;) {
    const [runId] = await readdir(checkpointRoot).catch(() => [] as string[]);
    if (runId !== undefined && (await listCheckpoints(path.join(checkpointRoot, runId))).length > 0) return runId;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
