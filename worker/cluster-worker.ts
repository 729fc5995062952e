import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { MetricsServer } from '../shared/metrics/metrics-server.ts';
import { joinHostPort } from '../shared/net/host-port.ts';
import { connectRedis } from '../shared/redis/local-redis.ts';
import { RedisKeys } from '../shared/redis/keys.ts';
import { RunStore } from '../shared/run/run-store.ts';
import { TRAIN_JOB_LOCK_MS, TRAIN_QUEUE, type TrainJobData, type TrainJobResult } from '../shared/run/train-job.ts';
import { startHeartbeat, type Heartbeat, type WorkerAssignment } from '../shared/run/worker-registry.ts';
import { runTrainJob, type JobContext } from './train-job.ts';
import { LivenessBeat } from './liveness/liveness-beat.ts';
import { ShardCache } from '../shared/shards/shard-cache.ts';
import { WorkerMetrics } from './worker-metrics.ts';
import type { CompiledWorkerOptions } from './worker-options.ts';

export type WorkerState = 'idle' | 'training' | 'draining' | 'closed';

/**
 * A worker process's life: it serves its metrics, registers itself in Redis (heartbeat, so that
 * the coordinator's service discovery lists it), takes one `train` job at a time from BullMQ and
 * runs it; on shutdown it drains (the job in progress stops with its peers after the current
 * step and checkpoints), then deregisters and closes the queue consumer, its Redis connections
 * and its metrics server.
 */
export class ClusterWorker {
  state: WorkerState = 'idle';
  private readonly redis: Redis;
  /** BullMQ does not close a connection it was given; we do. */
  private readonly consumerConnection: Redis;
  private readonly consumer: Worker<TrainJobData, TrainJobResult>;
  private readonly heartbeat: Heartbeat;
  private readonly liveness: LivenessBeat;
  private assignment: WorkerAssignment | undefined;
  private closing?: Promise<void>;

  private constructor(
    private readonly options: CompiledWorkerOptions,
    private readonly log: (line: string) => void,
    metrics: WorkerMetrics,
    /** Undefined when `--metrics-port off`. */
    readonly metricsServer: MetricsServer | undefined,
  ) {
    const keys = new RedisKeys(options.prefix);
    this.redis = connectRedis(options.redis, `worker-${options.name}`);
    const runs = new RunStore(this.redis, keys);
    const shards = new ShardCache(this.redis, keys, ({ index, version }) => log(`shard ${index} of dataset ${version} failed its checksum; fetching it again`));
    this.consumerConnection = connectRedis(options.redis, `worker-bullmq-${options.name}`);
    this.liveness = new LivenessBeat(options.redis, log);
    const context: JobContext = {
      options,
      liveness: this.liveness,
      redis: this.redis,
      keys,
      runs,
      shards,
      metrics,
      shutdownRequested: () => this.state === 'draining' || this.state === 'closed',
      log,
    };
    this.consumer = new Worker<TrainJobData, TrainJobResult>(TRAIN_QUEUE, (job: Job<TrainJobData>) => this.process(job, context), {
      connection: this.consumerConnection,
      prefix: keys.queuePrefix(),
      concurrency: 1,
      lockDuration: TRAIN_JOB_LOCK_MS,
      stalledInterval: TRAIN_JOB_LOCK_MS,
      // A stalled slot cannot rejoin its ring: fail it and let the run be resumed instead.
      maxStalledCount: 0,
    });
    this.consumer.on('error', (error) => log(`queue error: ${error.message}`));
    this.consumer.on('failed', (job, error) => log(`job ${job?.id} failed: ${error.message}`));
    const metricsAddress = metricsServer === undefined ? undefined : joinHostPort(options.metricsAdvertiseHost, metricsServer.port);
    this.heartbeat = startHeartbeat(this.redis, keys, {
      // No beat is written once closed: the entry is deleted by then.
      status: () => ({ name: options.name, state: this.state === 'closed' ? 'draining' : this.state, metricsAddress, assignment: this.assignment }),
      onError: (error) => log(`heartbeat not written: ${(error as Error).message}`),
    });
  }

  /**
   * Starts serving metrics (unless `metricsPort` is off), then takes jobs and registers itself.
   * Rejects with ConfigError when the metrics port cannot be bound.
   */
  static async start(options: CompiledWorkerOptions, log: (line: string) => void): Promise<ClusterWorker> {
    const metrics = new WorkerMetrics();
    // Assigned once the server is up; its health callback reads it before that.
    // eslint-disable-next-line prefer-const
    let worker: ClusterWorker | undefined;
    const server =
      options.metricsPort === 'off'
        ? undefined
        : await MetricsServer.start({
            registry: metrics.registry,
            host: options.metricsHost,
            port: options.metricsPort,
            health: () => ({ ok: worker !== undefined && worker.state !== 'closed', state: worker?.state ?? 'starting' }),
          });
    worker = new ClusterWorker(options, log, metrics, server);
    return worker;
  }

  private async process(job: Job<TrainJobData>, context: JobContext): Promise<TrainJobResult> {
    this.state = 'training';
    this.assignment = { runId: job.data.runId, generation: job.data.generation, rank: job.data.slot, worldSize: job.data.worldSize };
    void this.heartbeat.beat().catch(() => {});
    try {
      const result = await runTrainJob(job.data, context);
      this.log(`job ${job.id}: ${result.outcome} at step ${result.globalStep}`);
      return result;
    } finally {
      if (this.state === 'training') this.state = 'idle';
      this.assignment = undefined;
      void this.heartbeat.beat().catch(() => {});
    }
  }

  /** Stops taking jobs; the job in progress stops at the next agreed step. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'draining';
      void this.heartbeat.beat().catch(() => {});
      const steps: Array<[string, () => Promise<unknown>]> = [
        ['closing the queue consumer', () => this.consumer.close()],
        ['deregistering', () => this.heartbeat.stop()],
        ['ending the liveness beat', () => this.liveness.close()],
        ['closing the metrics server', async () => this.metricsServer?.close()],
      ];
      for (const [what, step] of steps) {
        try {
          await step();
        } catch (error) {
          this.log(`${what}: ${(error as Error).message}`);
        }
      }
      for (const connection of [this.consumerConnection, this.redis]) {
        try {
          await connection.quit();
        } catch {
          connection.disconnect();
        }
      }
      this.state = 'closed';
    })();
    return this.closing;
  }
}
