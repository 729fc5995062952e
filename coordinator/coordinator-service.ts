import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis } from '../shared/redis/local-redis.ts';
import { TRAIN_QUEUE, type DatasetVersions } from '../shared/run/train-job.ts';
import { RunError } from '../shared/errors.ts';
import type { ClusterClient } from './cluster-client.ts';
import { publishDataset } from './dataset-publisher.ts';

export type CoordinatorState = 'idle' | 'serving' | 'closed';

/** `<run>.g<generation>.s<slot>` -> its parts (see shared/run/train-job.ts). */
function parseJobId(jobId: string): { runId: string; generation: number; slot: number } | undefined {
  const match = /^(.+)\.g(\d+)\.s(\d+)$/.exec(jobId);
  return match ? { runId: match[1]!, generation: Number(match[2]), slot: Number(match[3]) } : undefined;
}

/**
 * The long-running coordinator (`coordinator serve`, and inside `launch --local`): publishes
 * the dataset shards, and marks a run failed when one of its current generation's jobs fails
 * (a worker's error, or BullMQ giving up on a stalled job), so that nobody waits on a dead run.
 */
export class CoordinatorService {
  state: CoordinatorState = 'idle';
  dataset?: DatasetVersions;
  private events?: QueueEvents;
  private eventsConnection?: Redis;
  private closing?: Promise<void>;

  constructor(private readonly client: ClusterClient, private readonly log: (line: string) => void = () => {}) {}

  async start(): Promise<DatasetVersions> {
    this.dataset = await publishDataset(this.client.shards);
    this.eventsConnection = connectRedis(this.client.redisUrl, 'coordinator-events');
    this.events = new QueueEvents(TRAIN_QUEUE, { connection: this.eventsConnection, prefix: this.client.keys.queuePrefix() });
    this.events.on('error', (error) => this.log(`queue events error: ${error.message}`));
    this.events.on('failed', ({ jobId, failedReason }) => void this.onJobFailed(jobId, failedReason));
    this.state = 'serving';
    return this.dataset;
  }

  private async onJobFailed(jobId: string, reason: string): Promise<void> {
    const parsed = parseJobId(jobId);
    if (!parsed) return;
    try {
      const run = await this.client.runs.get(parsed.runId);
      if (run.generation !== parsed.generation || (run.state !== 'running' && run.state !== 'queued')) return;
      // A worker that failed the run itself recorded its typed failure first; this one only knows the text.
      const failure = { code: 'RUN_JOB_FAILED', rank: parsed.slot };
      await this.client.runs.transition(parsed.runId, 'failed', { error: `job ${jobId} failed: ${reason}`, failure });
      this.log(`run ${parsed.runId} failed: job ${jobId}: ${reason}`);
    } catch (error) {
      // Another process moved the run first; that is the outcome we wanted.
      if (!(error instanceof RunError)) this.log(`cannot mark ${parsed.runId} failed: ${(error as Error).message}`);
    }
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closed';
      try {
        await this.events?.close();
      } catch {
        // The connection goes next either way.
      }
      this.eventsConnection?.disconnect();
    })();
    return this.closing;
  }
}
