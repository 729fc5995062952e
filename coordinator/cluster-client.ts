import type { Redis } from 'ioredis';
import { redisTargetOf, type RedisTarget } from '../shared/config/redis-options.ts';
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
  /** The Redis connected to, with its credentials: further connections (QueueEvents, workers) use it. */
  readonly target: RedisTarget;
  private closing?: Promise<void>;

  constructor(endpoint: string | RedisTarget, prefix: string, role = 'coordinator') {
    this.target = redisTargetOf(endpoint);
    this.keys = new RedisKeys(prefix);
    this.redis = connectRedis(this.target, role);
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
