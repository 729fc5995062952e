/**
 * The coordinator's Prometheus metrics: what the cluster is doing, read from Redis at each
 * scrape (runs by state, queue depth, live workers per run, each active run's progress, ETA and
 * latest test figures), plus what the coordinator itself did (shard bytes published) and the
 * default process metrics. Per-run series exist only for runs that are queued or running or
 * changed within the last {@link RECENT_RUN_MS}, so the `run` label stays bounded.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import { collectProcessMetrics } from '../shared/metrics/process-metrics.ts';
import type { RedisKeys } from '../shared/redis/keys.ts';
import { RUN_STATES, type RunRecord } from '../shared/run/run-state.ts';
import type { RunStore } from '../shared/run/run-store.ts';
import { listLiveWorkers } from '../shared/run/worker-registry.ts';
import type { TrainingQueue } from './training-queue.ts';

/** A stopped run keeps its series this long after its last change, so its final epoch is scraped. */
export const RECENT_RUN_MS = 10 * 60_000;

/** BullMQ job states reported as `fmnist_queue_jobs{state}`. */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'paused', 'completed', 'failed'] as const;

/** Where the coordinator's metrics read the cluster. */
export interface ClusterView {
  redis: Redis;
  keys: RedisKeys;
  runs: RunStore;
  queue: TrainingQueue;
}

/** How far a run is, for `fmnist_run_progress_ratio` and `fmnist_run_eta_seconds`. */
export interface RunProgressFigures {
  /** Steps done / steps of the whole run, 0..1. */
  ratio: number;
  /**
   * Seconds left at the pace of the latest step (evaluation not included); only while the run
   * is running with a recorded step, 0 once it completed.
   */
  etaSeconds?: number;
}

/** Progress and ETA of `run` from its latest progress record. */
export function runProgressFigures(run: RunRecord): RunProgressFigures {
  if (run.state === 'completed') return { ratio: 1, etaSeconds: 0 };
  const progress = run.progress;
  if (progress === undefined) return { ratio: 0 };
  const total = run.config.epochs * progress.stepsPerEpoch;
  const done = progress.globalStep ?? (progress.epoch - 1) * progress.stepsPerEpoch + progress.step;
  const ratio = Math.min(1, done / total);
  if (run.state !== 'running' || !(progress.examplesPerSec > 0)) return { ratio };
  return { ratio, etaSeconds: ((total - done) * run.config.batchSize) / progress.examplesPerSec };
}

/** Every metric of the coordinator, in its own registry. */
export class CoordinatorMetrics {
  readonly registry = new Registry();
  private readonly runsByState: Gauge<'state'>;
  private readonly queueJobs: Gauge<'state'>;
  private readonly runWorkers: Gauge<'run'>;
  private readonly testAccuracy: Gauge<'run'>;
  private readonly testLoss: Gauge<'run'>;
  private readonly progressRatio: Gauge<'run'>;
  private readonly etaSeconds: Gauge<'run'>;
  private readonly shardBytes: Counter;

  constructor(
    private readonly view: ClusterView,
    private readonly now: () => number = Date.now,
  ) {
    const registers = [this.registry];
    const perRun = { labelNames: ['run'] as const, registers };
    this.runsByState = new Gauge({ name: 'fmnist_runs', help: 'Runs in the cluster, by state.', labelNames: ['state'], registers });
    this.queueJobs = new Gauge({ name: 'fmnist_queue_jobs', help: 'Jobs of the BullMQ train queue, by state.', labelNames: ['state'], registers });
    this.runWorkers = new Gauge({ name: 'fmnist_run_workers', help: 'Live registered workers training the run.', ...perRun });
    this.testAccuracy = new Gauge({ name: 'fmnist_run_test_accuracy', help: 'Test accuracy after the latest finished epoch (0..1).', ...perRun });
    this.testLoss = new Gauge({ name: 'fmnist_run_test_loss', help: 'Mean test cross-entropy after the latest finished epoch.', ...perRun });
    this.progressRatio = new Gauge({ name: 'fmnist_run_progress_ratio', help: 'Optimiser steps done / steps of the whole run (0..1).', ...perRun });
    this.etaSeconds = new Gauge({
      name: 'fmnist_run_eta_seconds',
      help: 'Seconds left for a running run at the pace of its latest step (evaluation not included).',
      ...perRun,
    });
    this.shardBytes = new Counter({
      name: 'fmnist_shard_bytes_published_total',
      help: 'Bytes of dataset shards this coordinator wrote to Redis (workers fetch them from there).',
      registers,
    });
    collectProcessMetrics(this.registry);
  }

  /** Shards this coordinator stored (0 when the version was already there). */
  shardsPublished(bytes: number): void {
    this.shardBytes.inc(bytes);
  }

  /** Reads the cluster's state from Redis into the gauges; called before each scrape. */
  async refresh(): Promise<void> {
    const [summaries, counts, workers] = await Promise.all([
      this.view.runs.summaries(),
      this.view.queue.queue.getJobCounts(...QUEUE_STATES),
      listLiveWorkers(this.view.redis, this.view.keys),
    ]);
    for (const state of RUN_STATES) this.runsByState.set({ state }, summaries.filter((run) => run.state === state).length);
    for (const state of QUEUE_STATES) this.queueJobs.set({ state }, counts[state] ?? 0);
    const now = this.now();
    const shown = summaries.filter((run) => run.state === 'queued' || run.state === 'running' || now - run.updatedAt < RECENT_RUN_MS);
    const records = await Promise.all(shown.map((run) => this.view.runs.get(run.id)));
    for (const gauge of [this.runWorkers, this.testAccuracy, this.testLoss, this.progressRatio, this.etaSeconds]) gauge.reset();
    for (const run of records) this.setRun(run, workers.filter((beat) => beat.assignment?.runId === run.id).length);
  }

  private setRun(run: RunRecord, workers: number): void {
    const labels = { run: run.id };
    this.runWorkers.set(labels, workers);
    const latest = run.history.at(-1);
    if (latest !== undefined) this.testAccuracy.set(labels, latest.testAcc);
    if (latest?.testLoss !== undefined) this.testLoss.set(labels, latest.testLoss);
    const figures = runProgressFigures(run);
    this.progressRatio.set(labels, figures.ratio);
    if (figures.etaSeconds !== undefined) this.etaSeconds.set(labels, figures.etaSeconds);
  }
}
