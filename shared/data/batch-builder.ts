/**
 * Turns sample indices into a model-ready batch: images resized to `size x size` floats in
 * [0, 1], NHWC with one channel, and labels as int32.
 */
import type { ImageSet } from './fashion-mnist.ts';
import { bilinearResizePlan, resizeGreyImage } from './bilinear-resize.ts';

/** A batch of `n` images and their labels. */
export interface Batch {
  /** Pixels in [0, 1], NHWC `[n, size, size, 1]`. */
  x: Float32Array;
  /** Class per image, 0-9, `[n]`. */
  labels: Int32Array;
}

/**
 * Builds the batch for `indices` (positions in `set`), resizing each image to `size x size`.
 * When `out` is given its arrays are written and views of the first `n` entries returned, so
 * one buffer pair sized for a full batch serves every batch of an epoch, the last shorter
 * one included; `out` must hold at least `n * size * size` floats and `n` labels.
 */
export function buildBatch(set: ImageSet, indices: ArrayLike<number>, size: number, out?: Batch): Batch {
  const n = indices.length;
  const imagePixels = set.height * set.width;
  const outPixels = size * size;
  const batch = out === undefined ? { x: new Float32Array(n * outPixels), labels: new Int32Array(n) } : viewsOf(out, n, outPixels);
  const plan = bilinearResizePlan(set.height, set.width, size, size);
  for (let k = 0; k < n; k += 1) {
    const index = indices[k];
    if (!Number.isInteger(index) || index < 0 || index >= set.count)
      throw new RangeError(`buildBatch: index ${index} is outside the set of ${set.count} images`);
    resizeGreyImage(plan, set.images, index * imagePixels, batch.x, k * outPixels);
    batch.labels[k] = set.labels[index];
  }
  return batch;
}

function viewsOf(out: Batch, n: number, outPixels: number): Batch {
  if (out.x.length < n * outPixels || out.labels.length < n) {
    throw new RangeError(`buildBatch: out holds ${out.labels.length} images of ${outPixels} pixels, needs ${n}`);
  }
  return { x: out.x.subarray(0, n * outPixels), labels: out.labels.subarray(0, n) };
}
