/**
 * The coordinator's metrics (coordinator/coordinator-metrics.ts) read from a real Redis: runs by
 * state, queue depth, live workers per run, each active run's progress, ETA and latest test
 * figures (a run that stopped long ago has no series); and the service discovery of /sd.
 */
import test from 'ava';
import { CoordinatorMetrics, RECENT_RUN_MS, runProgressFigures } from '../coordinator/coordinator-metrics.ts';
import { discoveryTargets } from '../coordinator/service-discovery.ts';
import { TrainingQueue } from '../coordinator/training-queue.ts';
import { RedisKeys } from '../shared/redis/keys.ts';
import type { RunRecord } from '../shared/run/run-state.ts';
import { RunStore } from '../shared/run/run-store.ts';
import { startHeartbeat, type WorkerStatus } from '../shared/run/worker-registry.ts';
import { promtool } from './helpers/prometheus.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

let redis: TestRedis;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
});
test.after.always(() => redis?.close());

const CONFIG = { workers: 2, backend: 'wasm', model: 'tiny-cnn', epochs: 2, batchSize: 100 };
const PROGRESS = {
  epoch: 2,
  step: 5,
  stepsPerEpoch: 10,
  loss: 1.5,
  examplesPerSec: 400,
  globalStep: 15,
  timings: { dataMs: 1, computeMs: 200, allReduceMs: 40, updateMs: 9 },
};

function training(runId: string, rank: number, port: number): WorkerStatus {
  return { name: `w${rank}`, state: 'training', metricsAddress: `10.0.0.${rank + 1}:${port}`, assignment: { runId, generation: 0, rank, worldSize: 2 } };
}

async function values(metrics: CoordinatorMetrics, name: string): Promise<Record<string, number>> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  return Object.fromEntries((metric?.values ?? []).map((v) => [v.labels.run ?? v.labels.state ?? '', v.value]));
}

test("progress is steps done over the run's steps; the ETA is the remaining steps at the latest step's pace", (t) => {
  const run = { state: 'running', config: CONFIG, progress: PROGRESS, history: [] } as unknown as RunRecord;
  // 15 of 20 steps; 5 steps of 100 examples at 400 examples/sec.
  t.deepEqual(runProgressFigures(run), { ratio: 0.75, etaSeconds: 1.25 });
  t.deepEqual(runProgressFigures({ ...run, state: 'interrupted' }), { ratio: 0.75 });
  t.deepEqual(runProgressFigures({ ...run, state: 'completed' }), { ratio: 1, etaSeconds: 0 });
  t.deepEqual(runProgressFigures({ ...run, state: 'queued', progress: undefined }), { ratio: 0 });
  const { globalStep: _, ...withoutGlobalStep } = PROGRESS;
  t.deepEqual(runProgressFigures({ ...run, progress: { ...withoutGlobalStep, updatedAt: 0 } }), { ratio: 0.75, etaSeconds: 1.25 });
});

test("a scrape reads runs by state, queue depth, workers per run and each active run's figures from Redis", async (t) => {
  const keys = new RedisKeys(uniquePrefix('coord-metrics'));
  const client = redis.connect('coordinator-metrics');
  const runs = new RunStore(client, keys);
  const queue = new TrainingQueue(client, keys);
  t.teardown(() => queue.close());

  const oldRuns = new RunStore(client, keys, { now: () => Date.now() - 2 * RECENT_RUN_MS });
  const old = await oldRuns.create(CONFIG);
  await oldRuns.transition(old.id, 'running');
  await oldRuns.transition(old.id, 'completed');
  const running = await runs.create(CONFIG);
  await runs.transition(running.id, 'running');
  await runs.setProgress(running.id, PROGRESS);
  await runs.appendEpoch(running.id, { epoch: 1, loss: 1.8, trainAcc: 0.4, testAcc: 0.55, testLoss: 1.6, examplesPerSec: 400, seconds: 2.5 });
  const queued = await runs.create(CONFIG);
  await queue.enqueueGeneration(queued, { train: 'v-train', test: 'v-test' });
  const beats = [
    startHeartbeat(client, keys, { status: () => training(running.id, 0, 9001) }),
    startHeartbeat(client, keys, { status: () => training(running.id, 1, 9002) }),
  ];
  t.teardown(() => Promise.all(beats.map((beat) => beat.stop())).then(() => undefined));
  await Promise.all(beats.map((beat) => beat.beat()));

  const metrics = new CoordinatorMetrics({ redis: client, keys, runs, queue });
  metrics.shardsPublished(1_000);
  metrics.shardsPublished(0);
  await metrics.refresh();
  t.deepEqual(await values(metrics, 'fmnist_runs'), { queued: 1, running: 1, completed: 1, failed: 0, cancelled: 0, interrupted: 0 });
  t.like(await values(metrics, 'fmnist_queue_jobs'), { waiting: 2, active: 0, failed: 0 });
  t.deepEqual(await values(metrics, 'fmnist_run_workers'), { [running.id]: 2, [queued.id]: 0 }, 'the old completed run has no series');
  t.deepEqual(await values(metrics, 'fmnist_run_test_accuracy'), { [running.id]: 0.55 });
  t.deepEqual(await values(metrics, 'fmnist_run_test_loss'), { [running.id]: 1.6 });
  t.deepEqual(await values(metrics, 'fmnist_run_progress_ratio'), { [running.id]: 0.75, [queued.id]: 0 });
  t.deepEqual(await values(metrics, 'fmnist_run_eta_seconds'), { [running.id]: 1.25 });
  t.deepEqual(await values(metrics, 'fmnist_shard_bytes_published_total'), { '': 1_000 });

  await runs.transition(running.id, 'completed');
  await metrics.refresh();
  t.deepEqual(await values(metrics, 'fmnist_run_eta_seconds'), { [running.id]: 0 }, 'a completed run has no time left');
  const lint = await promtool(['check', 'metrics'], await metrics.registry.metrics());
  t.is(lint.code, 0, lint.output);
});

test('service discovery lists the live workers that serve metrics, then the coordinator at the address it was reached at', async (t) => {
  const keys = new RedisKeys(uniquePrefix('sd'));
  const client = redis.connect('sd');
  const beats = [
    startHeartbeat(client, keys, { workerId: 'a', status: () => training('run-x', 0, 9101) }),
    startHeartbeat(client, keys, { workerId: 'b', status: () => ({ name: 'spare', state: 'idle', metricsAddress: 'worker-b:9102' }) }),
    startHeartbeat(client, keys, { workerId: 'c', status: () => ({ name: 'no-metrics', state: 'idle' }) }),
  ];
  t.teardown(() => Promise.all(beats.map((beat) => beat.stop())).then(() => undefined));
  await Promise.all(beats.map((beat) => beat.beat()));
  t.deepEqual(await discoveryTargets(client, keys, 'coordinator:9400'), [
    { targets: ['worker-b:9102'], labels: { __meta_fmnist_role: 'worker', __meta_fmnist_worker: 'spare' } },
    { targets: ['10.0.0.1:9101'], labels: { __meta_fmnist_role: 'worker', __meta_fmnist_worker: 'w0' } },
    { targets: ['coordinator:9400'], labels: { __meta_fmnist_role: 'coordinator' } },
  ]);
  await beats[1].stop();
  t.deepEqual(
    (await discoveryTargets(client, keys, undefined)).map((group) => group.targets[0]),
    ['10.0.0.1:9101'],
    'a stopped worker leaves at once',
  );
});
