/**
 * The binary format of one dataset shard as stored in Redis, and the manifest that lists a
 * dataset version's shards with their SHA-256. The coordinator writes shards with
 * shard-store.ts, the workers read and verify them with shard-cache.ts.
 */
import { createHash } from 'node:crypto';
import { DatasetError } from '../errors.ts';

/** Images as one flat array of uint8 pixels (row-major, `count` x `height` x `width`) plus labels. */
export interface ImageSetLike {
  /** `count * height * width` grey levels, 0..255. */
  images: Uint8Array;
  /** `count` class labels, 0..9. */
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
}

/** One shard as listed in a manifest. */
export interface ShardEntry {
  /** Position of the shard, from 0; shard i holds images [i * shardSize, ...). */
  index: number;
  /** Images in this shard (shardSize, except maybe for the last). */
  count: number;
  /** Hex SHA-256 of the whole stored value, header included. */
  sha256: string;
}

/** The shards of one dataset version. */
export interface ShardManifest {
  /** The dataset version string the shards were stored under. */
  version: string;
  /** Images per shard (the last may hold fewer). */
  shardSize: number;
  /** Images in all shards together. */
  count: number;
  height: number;
  width: number;
  shards: ShardEntry[];
}

/** Images per shard unless told otherwise. */
export const DEFAULT_SHARD_SIZE = 1_000;

/** Shards written or read per Redis pipeline round trip (about 0.8 MB each for 28x28). */
export const SHARDS_PER_BATCH = 8;

/** 'FMS1': Fashion-MNIST shard, format 1. */
const MAGIC = 0x31534d46;
/** magic u32, count u32, height u16, width u16, reserved u32; little-endian. */
export const SHARD_HEADER_BYTES = 16;

/** Images `[start, start + count)` of `set` as one stored value: header, pixels, labels. */
export function encodeShard(set: ImageSetLike, start: number, count: number): Buffer {
  const pixels = set.height * set.width;
  const value = Buffer.alloc(SHARD_HEADER_BYTES + count * (pixels + 1));
  value.writeUInt32LE(MAGIC, 0);
  value.writeUInt32LE(count, 4);
  value.writeUInt16LE(set.height, 8);
  value.writeUInt16LE(set.width, 10);
  value.set(set.images.subarray(start * pixels, (start + count) * pixels), SHARD_HEADER_BYTES);
  value.set(set.labels.subarray(start, start + count), SHARD_HEADER_BYTES + count * pixels);
  return value;
}

/**
 * Reads a stored value back into an image set (views into `value`, no copy). `source` names the
 * value in errors. Throws DatasetError('DATASET_SHARD_MALFORMED') on a bad header or length.
 */
export function decodeShard(value: Buffer, source: string): ImageSetLike {
  if (value.length < SHARD_HEADER_BYTES || value.readUInt32LE(0) !== MAGIC) {
    throw new DatasetError('DATASET_SHARD_MALFORMED', source, 'not a dataset shard (bad header)');
  }
  const count = value.readUInt32LE(4);
  const height = value.readUInt16LE(8);
  const width = value.readUInt16LE(10);
  const pixels = count * height * width;
  if (value.length !== SHARD_HEADER_BYTES + pixels + count) {
    throw new DatasetError('DATASET_SHARD_MALFORMED', source, `length ${value.length} does not fit ${count} images of ${height}x${width}`);
  }
  const bytes = new Uint8Array(value.buffer, value.byteOffset, value.length);
  return {
    images: bytes.subarray(SHARD_HEADER_BYTES, SHARD_HEADER_BYTES + pixels),
    labels: bytes.subarray(SHARD_HEADER_BYTES + pixels),
    count,
    height,
    width,
  };
}

/** Hex SHA-256 of a stored value. */
export function sha256Hex(value: Uint8Array): string {
  return createHash('sha256').update(value).digest('hex');
}

/** Throws DatasetError('DATASET_SHAPE') unless the arrays' lengths fit count, height and width. */
export function assertImageSetShape(set: ImageSetLike, source: string): void {
  const positive = [set.count, set.height, set.width].every((n) => Number.isSafeInteger(n) && n > 0);
  if (!positive || set.height > 0xffff || set.width > 0xffff) {
    throw new DatasetError('DATASET_SHAPE', source, `bad shape ${set.count} x ${set.height} x ${set.width}`);
  }
  if (set.images.length !== set.count * set.height * set.width || set.labels.length !== set.count) {
    throw new DatasetError(
      'DATASET_SHAPE',
      source,
      `${set.images.length} pixels and ${set.labels.length} labels do not fit ${set.count} images of ${set.height}x${set.width}`,
    );
  }
}
