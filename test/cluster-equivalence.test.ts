import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { identicalWeights, maxRelativeDifference, newestWeights } from './helpers/checkpoint-weights.ts';
import { jsonLines, runCli } from './helpers/cli.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

let redis: TestRedis;
let scratch: string;
test.before(async () => {
  redis = await startTestRedis();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-equivalence-'));
});
test.after.always(async () => {
  await redis?.close();
  await rm(scratch, { recursive: true, force: true });
});

/** 320 images in batches of 64: one epoch is exactly 5 steps, checkpointed at its end. */
const TINY = [
  '--model',
  'tiny-cnn',
  '--epochs',
  '1',
  '--batch-size',
  '64',
  '--resize',
  '28',
  '--limit-train',
  '320',
  '--limit-test',
  '200',
  '--seed',
  '3',
  '--backend',
  'wasm',
  '--json',
];

async function trainAlone(flags: string[]): Promise<{ lines: Record<string, unknown>[]; dir: string }> {
  const dir = path.join(scratch, `train-${Math.random().toString(36).slice(2)}`);
  const result = await runCli('coordinator', ['train', ...flags, '--checkpoint-dir', dir]);
  if (result.code !== 0) throw new Error(`train failed: ${result.stderr}`);
  return { lines: jsonLines(result.stdout), dir };
}

async function launchLocal(workers: number, flags: string[]): Promise<{ lines: Record<string, unknown>[]; dir: string }> {
  const stateDir = path.join(scratch, `state-${Math.random().toString(36).slice(2)}`);
  const args = ['launch', '--local', '--workers', String(workers), ...flags, '--redis', redis.url, '--prefix', uniquePrefix('eq'), '--state-dir', stateDir];
  const result = await runCli('coordinator', args);
  if (result.code !== 0) throw new Error(`launch failed (${result.code}): ${result.stdout} ${result.stderr}`);
  const lines = jsonLines(result.stdout);
  const runId = lines.at(-1)!.run as string;
  return { lines, dir: path.join(stateDir, 'checkpoints', runId) };
}

test.serial('one worker through the cluster path equals coordinator train exactly', async (t) => {
  const alone = await trainAlone(TINY);
  const cluster = await launchLocal(1, TINY);
  t.deepEqual(cluster.lines.at(-1)!.status, 'completed');
  const epochAlone = alone.lines[0];
  const epochCluster = cluster.lines[0];
  for (const key of ['loss', 'trainAcc', 'testAcc'] as const) t.is(epochCluster[key], epochAlone[key], key);
  t.is(epochCluster.workers, 1);
  t.true(identicalWeights(await newestWeights(cluster.dir), await newestWeights(alone.dir)), 'weights after 5 steps are bit-identical');
});

test.serial('two and three workers follow the one-process trajectory of a batch-norm-free model within 1e-5', async (t) => {
  const alone = await newestWeights((await trainAlone(TINY)).dir);
  for (const workers of [2, 3]) {
    const cluster = await launchLocal(workers, TINY);
    t.is(cluster.lines.at(-1)!.status, 'completed');
    t.is(cluster.lines[0].workers, workers);
    const difference = maxRelativeDifference(await newestWeights(cluster.dir), alone);
    // Only the order of float32 additions differs (per-slice sums, then the ring's sum).
    t.true(difference < 1e-5, `${workers} workers: max relative difference ${difference}`);
  }
});
