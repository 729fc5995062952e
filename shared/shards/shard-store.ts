/**
 * Puts a training set into Redis once per dataset version, as shards of `shardSize` images with a
 * SHA-256 each and a manifest that is written last: a manifest in Redis means every shard it lists
 * is there. Workers read them back with shard-cache.ts.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { DatasetError } from '../errors.ts';
import { RedisKeys } from '../redis/keys.ts';
import { LuaScript } from '../redis/lua-script.ts';
import {
  assertImageSetShape,
  DEFAULT_SHARD_SIZE,
  encodeShard,
  sha256Hex,
  SHARDS_PER_BATCH,
  type ImageSetLike,
  type ShardEntry,
  type ShardManifest,
} from './shard-format.ts';

/** Options of {@link ShardStore.store}. */
export interface StoreShardsOptions {
  /** Images per shard. @default 1000 */
  shardSize?: number;
  /** How long to wait for another process that is storing the same version, in ms. @default 120000 */
  waitMs?: number;
}

/** What {@link ShardStore.store} did. */
export interface StoreShardsResult {
  manifest: ShardManifest;
  /** False when the version was already stored (nothing was written). */
  stored: boolean;
  /** Bytes of shard values written (0 when nothing was). */
  bytes: number;
}

/** Poll interval while another process holds the version's lock, in ms. */
const LOCK_POLL_MS = 100;

const RELEASE_LOCK = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/** Dataset shards in Redis under one key prefix. Does not own the client. */
export class ShardStore {
  readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    keys: RedisKeys | string = new RedisKeys(),
  ) {
    this.keys = typeof keys === 'string' ? new RedisKeys(keys) : keys;
  }

  /** The manifest of `version`, or undefined when it was never (completely) stored. */
  async manifest(version: string): Promise<ShardManifest | undefined> {
    const json = await this.redis.get(this.keys.datasetManifest(version));
    return json === null ? undefined : (JSON.parse(json) as ShardManifest);
  }

  /**
   * Stores `set` as `version` unless that version is already there (then it is a no-op that
   * returns the existing manifest; only count, height and width are compared, and a mismatch
   * throws DatasetError('DATASET_VERSION_MISMATCH')). Concurrent callers storing the same version
   * write it once: the others wait for the manifest.
   */
  async store(version: string, set: ImageSetLike, options: StoreShardsOptions = {}): Promise<StoreShardsResult> {
    assertImageSetShape(set, `dataset ${version}`);
    const shardSize = options.shardSize ?? DEFAULT_SHARD_SIZE;
    if (!(Number.isSafeInteger(shardSize) && shardSize > 0)) {
      throw new DatasetError('DATASET_SHAPE', `dataset ${version}`, `shard size must be a positive integer, got ${shardSize}`);
    }
    const deadline = Date.now() + (options.waitMs ?? 120_000);
    for (;;) {
      const existing = await this.manifest(version);
      if (existing !== undefined) return { manifest: assertSameShape(existing, set), stored: false, bytes: 0 };
      const token = await this.tryLock(version, deadline);
      if (token !== undefined) return this.storeLocked(version, set, shardSize, token);
      if (Date.now() > deadline) {
        throw new DatasetError('DATASET_STORE_TIMEOUT', this.keys.datasetManifest(version), 'another process is still storing this version');
      }
      await sleep(LOCK_POLL_MS);
    }
  }

  private async storeLocked(version: string, set: ImageSetLike, shardSize: number, token: string): Promise<StoreShardsResult> {
    try {
      const { shards, bytes } = await this.writeShards(version, set, shardSize);
      const manifest: ShardManifest = { version, shardSize, count: set.count, height: set.height, width: set.width, shards };
      await this.redis.set(this.keys.datasetManifest(version), JSON.stringify(manifest), 'NX');
      return { manifest, stored: true, bytes };
    } finally {
      await RELEASE_LOCK.run(this.redis, [this.keys.datasetLock(version)], [token]);
    }
  }

  private async writeShards(version: string, set: ImageSetLike, shardSize: number): Promise<{ shards: ShardEntry[]; bytes: number }> {
    const entries: ShardEntry[] = [];
    let bytes = 0;
    const shardCount = Math.ceil(set.count / shardSize);
    for (let first = 0; first < shardCount; first += SHARDS_PER_BATCH) {
      const pipeline = this.redis.pipeline();
      for (let index = first; index < Math.min(first + SHARDS_PER_BATCH, shardCount); index += 1) {
        const count = Math.min(shardSize, set.count - index * shardSize);
        const value = encodeShard(set, index * shardSize, count);
        entries.push({ index, count, sha256: sha256Hex(value) });
        bytes += value.byteLength;
        pipeline.set(this.keys.datasetShard(version, index), value);
      }
      await execOrThrow(pipeline.exec());
    }
    return { shards: entries, bytes };
  }

  /** A lock token, or undefined when someone else holds the lock. Expires by itself at `deadline`. */
  private async tryLock(version: string, deadline: number): Promise<string | undefined> {
    const token = randomUUID();
    const ttl = Math.max(1_000, deadline - Date.now());
    const reply = await this.redis.set(this.keys.datasetLock(version), token, 'PX', ttl, 'NX');
    return reply === 'OK' ? token : undefined;
  }
}

function assertSameShape(manifest: ShardManifest, set: ImageSetLike): ShardManifest {
  if (manifest.count !== set.count || manifest.height !== set.height || manifest.width !== set.width) {
    throw new DatasetError(
      'DATASET_VERSION_MISMATCH',
      `dataset ${manifest.version}`,
      `already stored with ${manifest.count} images of ${manifest.height}x${manifest.width}, not ${set.count} of ${set.height}x${set.width}; use a new version string`,
    );
  }
  return manifest;
}

async function execOrThrow(results: Promise<[Error | null, unknown][] | null>): Promise<void> {
  for (const [error] of (await results) ?? []) if (error) throw error;
}
