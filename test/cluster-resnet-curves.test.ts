import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RunStore } from '../shared/run/run-store.ts';
import { jsonLines, runCli } from './helpers/cli.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

let redis: TestRedis;
let scratch: string;
test.before(async () => {
  redis = await startTestRedis();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-curves-'));
});
test.after.always(async () => {
  await redis?.close();
  await rm(scratch, { recursive: true, force: true });
});

/**
 * ResNet-18 at 28x28, 4 steps of 64 images. The learning rate is 0.005 rather than the seed's 0.05:
 * at 0.05 the first steps are chaotic (the loss jumps from 3.5 to 7 and back), so any difference,
 * however small, is amplified within a few steps and the comparison would say nothing.
 */
const FLAGS = [
  '--epochs',
  '1',
  '--lr',
  '0.005',
  '--batch-size',
  '64',
  '--resize',
  '28',
  '--limit-train',
  '256',
  '--limit-test',
  '64',
  '--seed',
  '11',
  '--backend',
  'onednn',
  '--json',
];

/** The global batch loss of every step, from the run's event stream. */
async function stepLosses(workers: number): Promise<number[]> {
  const prefix = uniquePrefix(`curve${workers}`);
  const result = await runCli(
    'coordinator',
    ['launch', '--local', '--workers', String(workers), ...FLAGS, '--redis', redis.url, '--prefix', prefix, '--state-dir', path.join(scratch, prefix)],
    { timeoutMs: 280_000 },
  );
  if (result.code !== 0) throw new Error(`launch failed: ${result.stdout} ${result.stderr}`);
  const runId = jsonLines(result.stdout).at(-1)!.run as string;
  const events = await new RunStore(redis.connect(), prefix).readEvents(runId, { count: 1000 });
  const losses: number[] = [];
  for (const event of events) if (event.type === 'progress') losses[event.progress.globalStep! - 1] = event.progress.loss;
  return losses;
}

test('ResNet-18 loss curves of 1, 2 and 3 workers agree within the batch-norm tolerance', async (t) => {
  const one = await stepLosses(1);
  t.is(one.length, 4);
  for (const workers of [2, 3]) {
    const many = await stepLosses(workers);
    t.is(many.length, 4);
    t.log(`${workers} workers: ${many.map((l, i) => `${l.toFixed(4)}/${one[i].toFixed(4)}`).join(' ')}`);
    // Each worker normalises with its own slice's batch statistics (64/N images instead of 64),
    // as DDP does without SyncBatchNorm. Before any update (step 1) that is the only difference:
    // measured 1.6% (N=2) and 2.8% (N=3), bound 5% (the statistics of 21-32 images instead of 64).
    // Afterwards the weights drift apart too: single steps differed by up to 12% (at lr 0.01 by up
    // to 34%: the drift grows with the step size), so each step is bounded at 25% and the mean over
    // the curve, which averages the batch-to-batch noise, at 10%. The backend is deterministic, so
    // the figures are the same on every run.
    t.true(Math.abs(many[0] - one[0]) <= 0.05 * one[0], `step 1: ${many[0]} vs ${one[0]}`);
    many.forEach((loss, step) => t.true(Math.abs(loss - one[step]) <= 0.25 * one[step], `step ${step + 1}: ${loss} vs ${one[step]}`));
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    t.true(Math.abs(mean(many) - mean(one)) <= 0.1 * mean(one), `mean ${mean(many)} vs ${mean(one)}`);
  }
});
