/**
 * Which samples go in which batch. The order of an epoch depends on (seed, epoch) alone, never
 * on the number of workers: every worker computes the same global batches and takes its own
 * contiguous slice, so N workers together see exactly what one worker would.
 */
import { deriveSeed, Prng, SeedStream } from './prng.ts';

/**
 * A permutation of `0..count-1` for this epoch: Fisher-Yates (Durstenfeld), for `i` from
 * `count - 1` down to 1 swap `p[i]` with `p[j]`, `j = nextBelow(i + 1)`, drawing from
 * `new Prng(deriveSeed(seed, SeedStream.dataOrder, epoch))`.
 *
 * @param seed the run's base seed (non-negative safe integer).
 * @param epoch zero-based epoch number.
 * @param count number of samples.
 */
export function epochPermutation(seed: number, epoch: number, count: number): Uint32Array {
  if (!Number.isInteger(count) || count < 0 || count > 2 ** 32) throw new RangeError(`epochPermutation: count must be an integer in [0, 2^32], got ${count}`);
  const rng = new Prng(deriveSeed(seed, SeedStream.dataOrder, epoch));
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i += 1) order[i] = i;
  for (let i = count - 1; i > 0; i -= 1) {
    const j = rng.nextBelow(i + 1);
    const held = order[i];
    order[i] = order[j];
    order[j] = held;
  }
  return order;
}

/**
 * The epoch's global batches: consecutive runs of `batchSize` indices of
 * {@link epochPermutation}, the last one shorter when `batchSize` does not divide `count`
 * (PyTorch DataLoader's `drop_last=False`). The arrays are views of one permutation.
 */
export function globalBatches(seed: number, epoch: number, count: number, batchSize: number): Uint32Array[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`globalBatches: batchSize must be a positive integer, got ${batchSize}`);
  const order = epochPermutation(seed, epoch, count);
  const batches: Uint32Array[] = [];
  for (let start = 0; start < count; start += batchSize) batches.push(order.subarray(start, start + batchSize));
  return batches;
}

/** Half-open range `[start, end)` of a batch of `batchLength` that worker `rank` of `worldSize` takes. */
export interface RankSlice {
  start: number;
  end: number;
}

/**
 * Splits `batchLength` into `worldSize` contiguous parts whose sizes differ by at most 1, the
 * earlier ranks taking the extra items. A rank's part is empty when the batch is shorter than
 * `worldSize`.
 */
export function rankSliceBounds(batchLength: number, rank: number, worldSize: number): RankSlice {
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new RangeError(`worldSize must be a positive integer, got ${worldSize}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new RangeError(`rank must be an integer in [0, ${worldSize}), got ${rank}`);
  const base = Math.floor(batchLength / worldSize);
  const extra = batchLength % worldSize;
  const start = rank * base + Math.min(rank, extra);
  return { start, end: start + base + (rank < extra ? 1 : 0) };
}

/** Worker `rank`'s contiguous slice of a global batch (a view); see {@link rankSliceBounds}. */
export function sliceForRank(batch: Uint32Array, rank: number, worldSize: number): Uint32Array {
  const { start, end } = rankSliceBounds(batch.length, rank, worldSize);
  return batch.subarray(start, end);
}
