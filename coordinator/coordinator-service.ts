import type { IncomingMessage } from 'node:http';
import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { MetricsServer } from '../shared/metrics/metrics-server.ts';
import { dialableHost, joinHostPort } from '../shared/net/host-port.ts';
import { connectRedis } from '../shared/redis/local-redis.ts';
import { TRAIN_QUEUE, type DatasetVersions } from '../shared/run/train-job.ts';
import { RunError } from '../shared/errors.ts';
import type { ClusterClient } from './cluster-client.ts';
import { CoordinatorMetrics } from './coordinator-metrics.ts';
import { publishDataset } from './dataset-publisher.ts';
import { RunRecovery } from './run-recovery.ts';
import { discoveryTargets } from './service-discovery.ts';

export type CoordinatorState = 'idle' | 'serving' | 'closed';

/** Where the coordinator serves `/metrics`, `/healthz` and `/sd`. */
export interface CoordinatorMetricsOptions {
  host: string;
  /** A port, or 'auto' for a free one. */
  port: number | 'auto';
}

/** `<run>.g<generation>.s<slot>` -> its parts (see shared/run/train-job.ts). */
function parseJobId(jobId: string): { runId: string; generation: number; slot: number } | undefined {
  const match = /^(.+)\.g(\d+)\.s(\d+)$/.exec(jobId);
  return match ? { runId: match[1], generation: Number(match[2]), slot: Number(match[3]) } : undefined;
}

/**
 * The long-running coordinator (`coordinator serve`, and inside `launch --local`): publishes
 * the dataset shards, marks a run failed when one of its current generation's jobs fails
 * (a worker's error, or BullMQ giving up on a stalled job), so that nobody waits on a dead run,
 * restarts a run that failed with a recoverable cause (coordinator/run-recovery.ts), and
 * (unless its metrics are off) serves the cluster's metrics and Prometheus' service discovery.
 */
export class CoordinatorService {
  state: CoordinatorState = 'idle';
  dataset?: DatasetVersions;
  /** The metrics server, once started (undefined when metrics are off). */
  metricsServer?: MetricsServer;
  private readonly metrics: CoordinatorMetrics;
  private recovery?: RunRecovery;
  private events?: QueueEvents;
  private eventsConnection?: Redis;
  private closing?: Promise<void>;

  constructor(
    private readonly client: ClusterClient,
    private readonly log: (line: string) => void = () => {},
    private readonly metricsOptions?: CoordinatorMetricsOptions,
    /** See RunRecoveryOptions.resumeLost. @default true */
    private readonly resumeLost = true,
  ) {
    this.metrics = new CoordinatorMetrics(client);
  }

  async start(): Promise<DatasetVersions> {
    if (this.metricsOptions !== undefined) this.metricsServer = await this.serveMetrics(this.metricsOptions);
    this.dataset = await publishDataset(this.client.shards, (bytes) => this.metrics.shardsPublished(bytes));
    this.recovery = new RunRecovery(this.client, this.dataset, { log: this.log, resumeLost: this.resumeLost });
    this.recovery.start();
    this.eventsConnection = connectRedis(this.client.target, 'coordinator-events');
    this.events = new QueueEvents(TRAIN_QUEUE, { connection: this.eventsConnection, prefix: this.client.keys.queuePrefix() });
    this.events.on('error', (error) => this.log(`queue events error: ${error.message}`));
    this.events.on('failed', ({ jobId, failedReason }) => void this.onJobFailed(jobId, failedReason));
    this.state = 'serving';
    return this.dataset;
  }

  private serveMetrics(options: CoordinatorMetricsOptions): Promise<MetricsServer> {
    // Prometheus always sends Host: the address it reached us at, which is how it should list us.
    const self = (request: IncomingMessage) =>
      request.headers.host ?? (this.metricsServer && joinHostPort(dialableHost(options.host), this.metricsServer.port));
    return MetricsServer.start({
      registry: this.metrics.registry,
      host: options.host,
      port: options.port,
      refresh: () => this.metrics.refresh(),
      health: () => ({ ok: this.state !== 'closed', state: this.state }),
      routes: { '/sd': (request) => discoveryTargets(this.client.redis, this.client.keys, self(request)) },
    });
  }

  private async onJobFailed(jobId: string, reason: string): Promise<void> {
    const parsed = parseJobId(jobId);
    if (!parsed) return;
    try {
      const run = await this.client.runs.get(parsed.runId);
      if (run.generation !== parsed.generation) return;
      if (run.state === 'running' || run.state === 'queued') {
        // A worker that failed the run itself recorded its typed failure first; this one only knows the text.
        const failure = { code: 'RUN_JOB_FAILED', rank: parsed.slot };
        await this.client.runs.transition(parsed.runId, 'failed', { error: `job ${jobId} failed: ${reason}`, failure, generation: parsed.generation });
        this.log(`run ${parsed.runId} failed: job ${jobId}: ${reason}`);
      }
    } catch (error) {
      // Another process moved the run first; that is the outcome we wanted.
      if (!(error instanceof RunError)) this.log(`cannot mark ${parsed.runId} failed: ${(error as Error).message}`);
    }
    // Whoever recorded the failure, a job's end is the moment to restart without waiting for the sweep.
    await this.recovery?.consider(parsed.runId).catch((error: unknown) => this.log(`cannot restart ${parsed.runId}: ${(error as Error).message}`));
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closed';
      await this.recovery?.close();
      try {
        await this.events?.close();
      } catch {
        // The connection goes next either way.
      }
      this.eventsConnection?.disconnect();
      await this.metricsServer?.close();
    })();
    return this.closing;
  }
}
