/**
 * A worker process's Prometheus metrics (served on `/metrics`, see shared/metrics/metrics-server.ts).
 * The training loop reports each step through its hooks and the ring each all-reduce; this module
 * turns those reports into counters, gauges and a histogram, in base units, labelled by run and
 * rank (bounded: only the current job's run and rank are kept), plus the default process
 * metrics (CPU, memory, event-loop lag, GC).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '../shared/metrics/process-metrics.ts';
import type { StepReport } from '../shared/train/training-loop.ts';
import type { AllReduceTimings } from './collective/allreduce-operation.ts';
import { REFUSAL_REASONS, type RefusalReason } from './collective/refusal-reason.ts';

/** The phases of a step, as the `phase` label of `fmnist_worker_step_phase_seconds`. */
export const STEP_PHASES = ['data', 'compute', 'allreduce', 'update'] as const;
export type StepPhase = (typeof STEP_PHASES)[number];

/**
 * Step phase buckets, in seconds: 1 ms to 60 s in 1-2.5-5 steps, so that a GPU step's update
 * (milliseconds) and a CPU ResNet-18 step's compute at 96x96 (seconds to tens of seconds) both
 * fall inside.
 */
export const STEP_PHASE_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type RunLabel = 'run' | 'rank';
type RunLabels = Record<RunLabel, string>;

/** What a job tells the metrics when it starts. */
export interface JobIdentity {
  runId: string;
  rank: number;
  generation: number;
  worldSize: number;
  /** The backend the job trains on (e.g. 'onednn'). */
  backend: string;
  /** Threads asked of the backend, or undefined for its own default. */
  threads: number | undefined;
}

/** The hooks one job reports through, bound to its run and rank. */
export interface JobMetrics {
  /** One training step of this rank (from TrainingHooks.onStep). */
  step(report: StepReport): void;
  /** One all-reduce of this rank, whatever its purpose (gradients, statistics, figures). */
  allReduce(timings: AllReduceTimings): void;
}

/** Every metric of a worker process, in its own registry. */
export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly examples: Counter<RunLabel>;
  private readonly stepPhase: Histogram<RunLabel | 'phase'>;
  private readonly sentBytes: Counter<RunLabel>;
  private readonly receivedBytes: Counter<RunLabel>;
  private readonly allReduceSeconds: Counter<RunLabel>;
  private readonly epoch: Gauge<RunLabel>;
  private readonly globalStep: Gauge<RunLabel>;
  private readonly loss: Gauge<RunLabel>;
  private readonly ringSize: Gauge<RunLabel>;
  private readonly ringGeneration: Gauge<RunLabel>;
  private readonly info: Gauge<'backend' | 'threads'>;
  private readonly refusals: Counter<'reason'>;
  private readonly nonfiniteSteps: Counter<RunLabel>;
  private current: RunLabels | undefined;

  constructor() {
    const registers = [this.registry];
    const runLabels = ['run', 'rank'] as const;
    this.examples = new Counter({
      name: 'fmnist_worker_examples_total',
      help: 'Training examples this rank has processed (its slices of the global batches).',
      labelNames: runLabels,
      registers,
    });
    this.stepPhase = new Histogram({
      name: 'fmnist_worker_step_phase_seconds',
      help: 'Time of one training step on this rank, by phase: data (batch building), compute (forward and backward), allreduce (gradient sum, including the wait for slower ranks), update (SGD).',
      labelNames: [...runLabels, 'phase'],
      buckets: [...STEP_PHASE_BUCKETS],
      registers,
    });
    this.sentBytes = new Counter({
      name: 'fmnist_allreduce_sent_bytes_total',
      help: 'Payload bytes this rank sent to its right neighbour in all-reduces.',
      labelNames: runLabels,
      registers,
    });
    this.receivedBytes = new Counter({
      name: 'fmnist_allreduce_received_bytes_total',
      help: 'Payload bytes this rank received from its left neighbour in all-reduces.',
      labelNames: runLabels,
      registers,
    });
    this.allReduceSeconds = new Counter({
      name: 'fmnist_allreduce_seconds_total',
      help: 'Time this rank spent in all-reduces, from call to result.',
      labelNames: runLabels,
      registers,
    });
    this.nonfiniteSteps = new Counter({
      name: 'fmnist_worker_nonfinite_steps_total',
      help: 'Steps whose summed gradient held a NaN or an infinity and were skipped (--nonfinite skip): no rank applied them.',
      labelNames: runLabels,
      registers,
    });
    this.epoch = new Gauge({ name: 'fmnist_worker_epoch', help: 'Epoch in progress (1-based).', labelNames: runLabels, registers });
    this.globalStep = new Gauge({
      name: 'fmnist_worker_global_step',
      help: 'Optimiser steps applied since the run started.',
      labelNames: runLabels,
      registers,
    });
    this.loss = new Gauge({
      name: 'fmnist_worker_loss',
      help: 'Mean cross-entropy of the latest global batch, before its update.',
      labelNames: runLabels,
      registers,
    });
    this.ringSize = new Gauge({ name: 'fmnist_ring_size', help: 'Workers in the all-reduce ring of the current job.', labelNames: runLabels, registers });
    this.ringGeneration = new Gauge({
      name: 'fmnist_ring_generation',
      help: 'Run generation of the current ring (incremented by each resume).',
      labelNames: runLabels,
      registers,
    });
    this.info = new Gauge({
      name: 'fmnist_worker_info',
      help: 'Backend and compute threads of the latest job (value 1).',
      labelNames: ['backend', 'threads'],
      registers,
    });
    this.refusals = new Counter({
      name: 'fmnist_collective_refused_messages_total',
      help: 'Calls and streams the ring member refused, by reason.',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of REFUSAL_REASONS) this.refusals.inc({ reason }, 0);
    collectProcessMetrics(this.registry);
  }

  /**
   * A job starts on this worker: the previous job's series go (so run labels stay bounded to the
   * one being trained), the new ones start at zero.
   */
  startJob(job: JobIdentity): JobMetrics {
    const labels: RunLabels = { run: job.runId, rank: String(job.rank) };
    if (this.current !== undefined && (this.current.run !== labels.run || this.current.rank !== labels.rank)) this.forget(this.current);
    this.current = labels;
    for (const counter of [this.examples, this.sentBytes, this.receivedBytes, this.allReduceSeconds, this.nonfiniteSteps]) counter.inc(labels, 0);
    // Label objects made once per job: a step only looks them up.
    const phase = Object.fromEntries(STEP_PHASES.map((name) => [name, { ...labels, phase: name }])) as Record<StepPhase, RunLabels & { phase: string }>;
    for (const name of STEP_PHASES) this.stepPhase.zero(phase[name]);
    this.ringSize.set(labels, job.worldSize);
    this.ringGeneration.set(labels, job.generation);
    this.info.reset();
    this.info.set({ backend: job.backend, threads: job.threads === undefined ? 'default' : String(job.threads) }, 1);
    return {
      step: (report) => {
        this.examples.inc(labels, report.examples);
        this.stepPhase.observe(phase.data, report.timings.dataMs / 1000);
        this.stepPhase.observe(phase.compute, report.timings.computeMs / 1000);
        this.stepPhase.observe(phase.allreduce, report.timings.allReduceMs / 1000);
        this.stepPhase.observe(phase.update, report.timings.updateMs / 1000);
        this.epoch.set(labels, report.epoch);
        this.globalStep.set(labels, report.globalStep);
        // A skipped step's loss is no number: the gauge keeps the last applied step's.
        if (report.skipped) this.nonfiniteSteps.inc(labels);
        else this.loss.set(labels, report.loss);
      },
      allReduce: (timings) => {
        this.sentBytes.inc(labels, timings.bytesSent);
        this.receivedBytes.inc(labels, timings.bytesReceived);
        this.allReduceSeconds.inc(labels, timings.totalMs / 1000);
      },
    };
  }

  /** The ring member refused a call or stream (RingOptions.onRefused). */
  refused(reason: RefusalReason): void {
    this.refusals.inc({ reason });
  }

  private forget(labels: RunLabels): void {
    for (const metric of [
      this.examples,
      this.sentBytes,
      this.receivedBytes,
      this.allReduceSeconds,
      this.nonfiniteSteps,
      this.epoch,
      this.globalStep,
      this.loss,
      this.ringSize,
      this.ringGeneration,
    ])
      metric.remove(labels);
    for (const phase of STEP_PHASES) this.stepPhase.remove({ ...labels, phase });
  }
}
