/**
 * A worker's metrics (worker/worker-metrics.ts): what a job's step and all-reduce reports become,
 * that only the current job's run keeps series, that refusals are counted by reason from zero,
 * and that the exposition passes `promtool check metrics`.
 */
import test from 'ava';
import type { MetricValue } from 'prom-client';
import type { StepReport } from '../shared/train/training-loop.ts';
import type { AllReduceTimings } from '../worker/collective/allreduce-operation.ts';
import { REFUSAL_REASONS } from '../worker/collective/refusal-reason.ts';
import { STEP_PHASES, WorkerMetrics } from '../worker/worker-metrics.ts';
import { promtool } from './helpers/prometheus.ts';

function step(globalStep: number, examples: number, loss: number): StepReport {
  return {
    epoch: 2,
    step: globalStep - 10,
    stepsPerEpoch: 10,
    globalStep,
    examples,
    loss,
    examplesPerSec: 1000,
    skipped: false,
    timings: { dataMs: 2, computeMs: 300, allReduceMs: 50, updateMs: 4, allReduceBusyMs: 50, allReduceOverlappedMs: 0, allReducesDuringCompute: 0 },
  };
}

const ALLREDUCE: AllReduceTimings = {
  totalMs: 250,
  firstChunkMs: 10,
  reduceScatterMs: 100,
  allGatherMs: 100,
  acknowledgeMs: 50,
  applyMs: 20,
  bytesSent: 4_000_000,
  bytesReceived: 3_000_000,
  chunksSent: 4,
  chunksReceived: 3,
};

/** The values of metric `name`, as [labels, value] pairs. */
async function values(metrics: WorkerMetrics, name: string): Promise<MetricValue<string>[]> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  return metric?.values ?? [];
}

async function value(metrics: WorkerMetrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const found = (await values(metrics, name)).find((v) => Object.entries(labels).every(([key, expected]) => v.labels[key] === expected));
  return found?.value;
}

test('steps and all-reduces of a job become counters, gauges and a phase histogram in base units', async (t) => {
  const metrics = new WorkerMetrics();
  const job = metrics.startJob({ runId: 'run-a', rank: 1, generation: 3, worldSize: 4, backend: 'onednn', threads: 2 });
  const labels = { run: 'run-a', rank: '1' };
  t.is(await value(metrics, 'fmnist_worker_examples_total', labels), 0, "a job's series start at 0, before its first step");
  job.step(step(11, 64, 2.5));
  job.step(step(12, 63, 2.25));
  job.allReduce(ALLREDUCE);
  job.allReduce(ALLREDUCE);

  t.is(await value(metrics, 'fmnist_worker_examples_total', labels), 127);
  t.is(await value(metrics, 'fmnist_worker_global_step', labels), 12);
  t.is(await value(metrics, 'fmnist_worker_epoch', labels), 2);
  t.is(await value(metrics, 'fmnist_worker_loss', labels), 2.25);
  t.is(await value(metrics, 'fmnist_allreduce_sent_bytes_total', labels), 8_000_000);
  t.is(await value(metrics, 'fmnist_allreduce_received_bytes_total', labels), 6_000_000);
  t.is(await value(metrics, 'fmnist_allreduce_seconds_total', labels), 0.5);
  t.is(await value(metrics, 'fmnist_ring_size', labels), 4);
  t.is(await value(metrics, 'fmnist_ring_generation', labels), 3);
  t.deepEqual(
    (await values(metrics, 'fmnist_worker_info')).map((v) => [v.labels, v.value]),
    [[{ backend: 'onednn', threads: '2' }, 1]],
  );
  const seconds = { data: 0.002, compute: 0.3, allreduce: 0.05, update: 0.004 };
  for (const phase of STEP_PHASES) {
    const histogram = await values(metrics, 'fmnist_worker_step_phase_seconds');
    const of = (name: string) => histogram.find((v) => v.labels.phase === phase && (v as { metricName?: string }).metricName === name)?.value;
    t.is(of('fmnist_worker_step_phase_seconds_count'), 2, phase);
    t.true(Math.abs(of('fmnist_worker_step_phase_seconds_sum')! - 2 * seconds[phase]) < 1e-9, phase);
  }
});

test("a job of another run drops the previous run's series, so run labels stay bounded", async (t) => {
  const metrics = new WorkerMetrics();
  metrics.startJob({ runId: 'run-a', rank: 0, generation: 0, worldSize: 2, backend: 'wasm', threads: undefined }).step(step(1, 32, 2));
  const job = metrics.startJob({ runId: 'run-b', rank: 1, generation: 0, worldSize: 2, backend: 'cpu', threads: undefined });
  job.step(step(1, 16, 2));
  const text = await metrics.registry.metrics();
  t.false(text.includes('run="run-a"'));
  t.is(await value(metrics, 'fmnist_worker_examples_total', { run: 'run-b', rank: '1' }), 16);
  t.deepEqual(
    (await values(metrics, 'fmnist_worker_info')).map((v) => v.labels),
    [{ backend: 'cpu', threads: 'default' }],
  );
});

test('refused messages are counted by reason, every reason exported from zero', async (t) => {
  const metrics = new WorkerMetrics();
  metrics.refused('malformed_chunk');
  metrics.refused('malformed_chunk');
  metrics.refused('unauthenticated');
  const counts = Object.fromEntries(
    (await values(metrics, 'fmnist_collective_refused_messages_total')).map((v): [string, number] => [String(v.labels.reason), v.value]),
  );
  t.deepEqual(Object.keys(counts).sort(), [...REFUSAL_REASONS].sort());
  t.is(counts.malformed_chunk, 2);
  t.is(counts.unauthenticated, 1);
  t.is(counts.out_of_step, 0);
});

test('the exposition passes promtool check metrics, process metrics included', async (t) => {
  const metrics = new WorkerMetrics();
  const job = metrics.startJob({ runId: 'run-a', rank: 0, generation: 0, worldSize: 2, backend: 'onednn', threads: 1 });
  job.step(step(1, 64, 2));
  job.allReduce(ALLREDUCE);
  const text = await metrics.registry.metrics();
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds'])
    t.true(text.includes(`# TYPE ${name} `), name);
  const lint = await promtool(['check', 'metrics'], text);
  t.is(lint.code, 0, lint.output);
});
