import type { Redis } from 'ioredis';
import { connectRedis } from '../shared/redis/local-redis.ts';
import { RedisKeys } from '../shared/redis/keys.ts';
import { RunStore } from '../shared/run/run-store.ts';
import { ShardStore } from '../shared/shards/shard-store.ts';
import { TrainingQueue } from './training-queue.ts';

/** The coordinator's handles on the cluster's Redis: runs, dataset shards and the job queue. */
export class ClusterClient {
  readonly keys: RedisKeys;
  readonly redis: Redis;
  readonly runs: RunStore;
  readonly shards: ShardStore;
  readonly queue: TrainingQueue;
  private closing?: Promise<void>;

  constructor(
    readonly redisUrl: string,
    prefix: string,
    role = 'coordinator',
  ) {
    this.keys = new RedisKeys(prefix);
    this.redis = connectRedis(redisUrl, role);
    this.runs = new RunStore(this.redis, this.keys);
    this.shards = new ShardStore(this.redis, this.keys);
    this.queue = new TrainingQueue(this.redis, this.keys, (error) => process.stderr.write(`queue error: ${error.message}\n`));
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.queue.close();
      } catch {
        // Closing continues with the connection.
      }
      try {
        await this.redis.quit();
      } catch {
        this.redis.disconnect();
      }
    })();
    return this.closing;
  }
}
