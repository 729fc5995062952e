import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis } from '../shared/redis/local-redis.ts';
import { RedisKeys } from '../shared/redis/keys.ts';
import { RunStore } from '../shared/run/run-store.ts';
import { TRAIN_JOB_LOCK_MS, TRAIN_QUEUE, type TrainJobData, type TrainJobResult } from '../shared/run/train-job.ts';
import { runTrainJob } from './train-job.ts';
import { ShardCache } from '../shared/shards/shard-cache.ts';
import type { CompiledWorkerOptions } from './worker-options.ts';

export type WorkerState = 'idle' | 'training' | 'draining' | 'closed';

/**
 * A worker process's life: it takes one `train` job at a time from BullMQ and runs it; on
 * shutdown it drains (the job in progress stops with its peers after the current step and
 * checkpoints), then closes the queue consumer and its Redis connections.
 */
export class ClusterWorker {
  state: WorkerState = 'idle';
  private readonly redis: Redis;
  /** BullMQ does not close a connection it was given; we do. */
  private readonly consumerConnection: Redis;
  private readonly consumer: Worker<TrainJobData, TrainJobResult>;
  private closing?: Promise<void>;

  constructor(private readonly options: CompiledWorkerOptions, private readonly log: (line: string) => void) {
    const keys = new RedisKeys(options.prefix);
    this.redis = connectRedis(options.redisUrl, `worker-${options.name}`);
    const runs = new RunStore(this.redis, keys);
    const shards = new ShardCache(this.redis, keys);
    this.consumerConnection = connectRedis(options.redisUrl, `worker-bullmq-${options.name}`);
    const context = { options, redis: this.redis, keys, runs, shards, shutdownRequested: () => this.state === 'draining' || this.state === 'closed', log };
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
  }

  private async process(job: Job<TrainJobData>, context: Parameters<typeof runTrainJob>[1]): Promise<TrainJobResult> {
    this.state = 'training';
    try {
      const result = await runTrainJob(job.data, context);
      this.log(`job ${job.id}: ${result.outcome} at step ${result.globalStep}`);
      return result;
    } finally {
      if (this.state === 'training') this.state = 'idle';
    }
  }

  /** Stops taking jobs; the job in progress stops at the next agreed step. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'draining';
      try {
        await this.consumer.close();
      } catch (error) {
        this.log(`closing the queue consumer: ${(error as Error).message}`);
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
