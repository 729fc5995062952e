import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../shared/redis/keys.ts';
import type { RunRecord } from '../shared/run/run-state.ts';
import { TRAIN_JOB_NAME, TRAIN_QUEUE, trainJobId, type DatasetVersions, type TrainJobData } from '../shared/run/train-job.ts';

/** The coordinator's side of the `train` queue: one job per worker slot of a run generation. */
export class TrainingQueue {
  readonly queue: Queue<TrainJobData>;

  constructor(connection: Redis, keys: RedisKeys, onError: (error: Error) => void = () => {}) {
    this.queue = new Queue<TrainJobData>(TRAIN_QUEUE, { connection, prefix: keys.queuePrefix() });
    this.queue.on('error', onError);
  }

  /** Queues the N slot jobs of the run's current generation (idempotent: ids are fixed). */
  async enqueueGeneration(run: RunRecord, dataset: DatasetVersions): Promise<void> {
    const worldSize = run.config.workers;
    const jobs = Array.from({ length: worldSize }, (_, slot) => ({
      name: TRAIN_JOB_NAME,
      data: { runId: run.id, generation: run.generation, slot, worldSize, dataset },
      opts: { jobId: trainJobId(run.id, run.generation, slot), attempts: 1, removeOnComplete: 1000, removeOnFail: 1000 },
    }));
    await this.queue.addBulk(jobs);
  }

  /** Removes the generation's jobs that no worker has taken yet; returns how many. */
  async removeWaiting(run: RunRecord): Promise<number> {
    let removed = 0;
    for (let slot = 0; slot < run.config.workers; slot += 1) {
      const job = await this.queue.getJob(trainJobId(run.id, run.generation, slot));
      if (job && (await job.isWaiting())) {
        await job.remove();
        removed += 1;
      }
    }
    return removed;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
