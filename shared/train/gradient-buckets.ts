/**
 * Gradient buckets as PyTorch DDP's reducer forms them (torch/csrc/distributed/c10d/reducer.cpp,
 * compute_bucket_assignment_by_size): parameters taken in reverse order, since the backward pass
 * finishes the last layers first, and a bucket closed once it holds at least its cap: 1 MiB for
 * the first, so that the first all-reduce starts early, `bucketMb` MiB for the others. A
 * parameter is never split, so a bucket may pass its cap by one parameter.
 */
import type { BufferRange } from './collective.ts';

/** One bucket: the parameters it holds and the range of the flat gradient they fill. */
export interface GradientBucket extends BufferRange {
  /** Indices into the canonical parameter order, last parameter first. */
  parameters: number[];
}

/** DDP's first bucket cap (dist._DEFAULT_FIRST_BUCKET_BYTES). */
export const FIRST_BUCKET_BYTES = 1024 * 1024;

/**
 * Buckets, in the order their all-reduces start, of parameters of `sizes` values (float32, in
 * canonical order, laid end to end in the flat gradient). Empty for `bucketMb` 0 (off).
 */
export function planBuckets(sizes: readonly number[], bucketMb: number): GradientBucket[] {
  if (bucketMb === 0) return [];
  const cap = bucketMb * 1024 * 1024;
  const ends: number[] = [];
  sizes.reduce((end, size, i) => (ends[i] = end + size), 0);
  const buckets: GradientBucket[] = [];
  let current: number[] = [];
  let bytes = 0;
  for (let i = sizes.length - 1; i >= 0; i -= 1) {
    current.push(i);
    bytes += sizes[i] * 4;
    if (bytes >= Math.min(buckets.length === 0 ? FIRST_BUCKET_BYTES : cap, cap)) {
      buckets.push(bucketOf(current, sizes, ends));
      current = [];
      bytes = 0;
    }
  }
  if (current.length > 0) buckets.push(bucketOf(current, sizes, ends));
  return buckets;
}

function bucketOf(parameters: number[], sizes: readonly number[], ends: number[]): GradientBucket {
  const first = parameters[parameters.length - 1];
  return { parameters, lo: ends[first] - sizes[first], hi: ends[parameters[0]] };
}
