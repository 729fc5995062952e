/**
 * A worker's view of a dataset version stored by shard-store.ts: fetches the shards from Redis,
 * checks each against the manifest's SHA-256, keeps them in memory for the process's later
 * jobs and hands back one image set.
 */
import type { Redis } from 'ioredis';
import { DatasetError } from '../errors.ts';
import { RedisKeys } from '../redis/keys.ts';
import { decodeShard, sha256Hex, SHARDS_PER_BATCH, type ImageSetLike, type ShardEntry, type ShardManifest } from './shard-format.ts';

/** Where a shard's bytes came from, for tests and logs. */
export type ShardSource = 'memory' | 'redis';

/** Said when a shard fetched from Redis failed its checksum and is fetched again. */
export type ChecksumRetryListener = (shard: { version: string; index: number; key: string }) => void | Promise<void>;

/**
 * Verified shards of any number of dataset versions. Does not own the Redis client. A shard whose
 * SHA-256 does not match the manifest is fetched once more (a torn read while the coordinator
 * republishes, a flipped bit on the way) before the load fails naming it.
 */
export class ShardCache {
  readonly keys: RedisKeys;
  private readonly shards = new Map<string, Buffer>();
  private readonly sets = new Map<string, Promise<ImageSetLike>>();
  /** How many shards came from each source since this cache was made. */
  readonly fetched: Record<ShardSource, number> = { memory: 0, redis: 0 };

  constructor(
    private readonly redis: Redis,
    keys: RedisKeys | string = new RedisKeys(),
    private readonly onChecksumRetry: ChecksumRetryListener = () => {},
  ) {
    this.keys = typeof keys === 'string' ? new RedisKeys(keys) : keys;
  }

  /** The manifest of `version`; DatasetError('DATASET_NOT_FOUND') when it was not stored. */
  async manifest(version: string): Promise<ShardManifest> {
    const key = this.keys.datasetManifest(version);
    const json = await this.redis.get(key);
    if (json === null)
      throw new DatasetError(
        'DATASET_NOT_FOUND',
        key,
        `dataset version ${JSON.stringify(version)} is not stored; the coordinator stores it before starting workers`,
      );
    return JSON.parse(json) as ShardManifest;
  }

  /**
   * The whole version as one image set (a fresh copy of the shards, in shard order). Loaded once
   * per version; a failed load (e.g. DatasetError 'DATASET_CHECKSUM') is not remembered.
   */
  load(version: string): Promise<ImageSetLike> {
    let set = this.sets.get(version);
    if (set === undefined) {
      set = this.loadOnce(version);
      set.catch(() => this.sets.delete(version));
      this.sets.set(version, set);
    }
    return set;
  }

  /** One verified shard of `version`. */
  async shard(version: string, index: number): Promise<ImageSetLike> {
    const manifest = await this.manifest(version);
    const entry = manifest.shards[index];
    if (entry === undefined)
      throw new DatasetError('DATASET_NOT_FOUND', this.keys.datasetShard(version, index), `dataset ${version} has ${manifest.shards.length} shards`);
    const [value] = await this.values(version, [entry]);
    return decodeShard(value, this.keys.datasetShard(version, index));
  }

  /** Forgets every shard and image set it holds. */
  clear(): void {
    this.shards.clear();
    this.sets.clear();
  }

  private async loadOnce(version: string): Promise<ImageSetLike> {
    const manifest = await this.manifest(version);
    const values = await this.values(version, manifest.shards);
    const parts = values.map((value, i) => decodeShard(value, this.keys.datasetShard(version, manifest.shards[i].index)));
    return concatenate(manifest, parts);
  }

  /** Verified values of these shards, in the same order, from memory or Redis. */
  private async values(version: string, entries: readonly ShardEntry[]): Promise<Buffer[]> {
    const found = entries.map((entry) => this.inMemory(version, entry));
    const missing = entries.filter((_, i) => found[i] === undefined);
    const fetched = await this.fetch(version, missing);
    return found.map((value) => value ?? (fetched.shift() as Buffer));
  }

  private inMemory(version: string, entry: ShardEntry): Buffer | undefined {
    const value = this.shards.get(memoryKey(version, entry));
    if (value !== undefined) this.fetched.memory += 1;
    return value;
  }

  private async fetch(version: string, entries: readonly ShardEntry[]): Promise<Buffer[]> {
    const values: Buffer[] = [];
    for (let first = 0; first < entries.length; first += SHARDS_PER_BATCH) {
      const batch = entries.slice(first, first + SHARDS_PER_BATCH);
      const pipeline = this.redis.pipeline();
      for (const entry of batch) pipeline.getBuffer(this.keys.datasetShard(version, entry.index));
      const replies = (await pipeline.exec()) ?? [];
      for (const [i, entry] of batch.entries()) {
        const [error, value] = replies[i] ?? [new Error('no reply'), null];
        if (error) throw error;
        values.push(await this.accept(version, entry, value as Buffer | null));
      }
    }
    return values;
  }

  /** `value` when it matches the manifest, else the shard fetched once more when that does; else DATASET_CHECKSUM. */
  private async accept(version: string, entry: ShardEntry, value: Buffer | null): Promise<Buffer> {
    const key = this.keys.datasetShard(version, entry.index);
    if (value === null) throw new DatasetError('DATASET_NOT_FOUND', key, `shard ${entry.index} of dataset ${version} is missing from Redis`);
    let actual = sha256Hex(value);
    if (actual !== entry.sha256) {
      await this.onChecksumRetry({ version, index: entry.index, key });
      const again = await this.redis.getBuffer(key);
      if (again === null) throw new DatasetError('DATASET_NOT_FOUND', key, `shard ${entry.index} of dataset ${version} is missing from Redis`);
      value = again;
      actual = sha256Hex(value);
    }
    if (actual !== entry.sha256) {
      throw new DatasetError(
        'DATASET_CHECKSUM',
        key,
        `shard ${entry.index} of dataset ${version} has SHA-256 ${actual} after fetching it twice, the manifest says ${entry.sha256}`,
      );
    }
    this.fetched.redis += 1;
    this.shards.set(memoryKey(version, entry), value);
    return value;
  }
}

function memoryKey(version: string, entry: ShardEntry): string {
  return `${version}\u0000${entry.index}\u0000${entry.sha256}`;
}

function concatenate(manifest: ShardManifest, parts: readonly ImageSetLike[]): ImageSetLike {
  const pixels = manifest.height * manifest.width;
  const images = new Uint8Array(manifest.count * pixels);
  const labels = new Uint8Array(manifest.count);
  let offset = 0;
  for (const part of parts) {
    images.set(part.images, offset * pixels);
    labels.set(part.labels, offset);
    offset += part.count;
  }
  if (offset !== manifest.count) {
    throw new DatasetError('DATASET_SHARD_MALFORMED', `dataset ${manifest.version}`, `shards hold ${offset} images, the manifest says ${manifest.count}`);
  }
  return { images, labels, count: manifest.count, height: manifest.height, width: manifest.width };
}
