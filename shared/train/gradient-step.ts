import * as tf from '@tensorflow/tfjs-core';
import './register-gradients.ts';
import { copyTensorInto } from '../backend/copy-tensor-into.ts';
import type { TrainableModel } from '../model/trainable-model.ts';
import type { GradientBucket } from './gradient-buckets.ts';
import { backwardInSteps, recordForward } from './tape-backward.ts';

/** A batch of NHWC images [count, size, size, 1] in [0, 1] and their class labels. */
export interface ImageBatch {
  x: Float32Array;
  labels: Int32Array;
  count: number;
  /** Side of the square images, in pixels. */
  size: number;
}

/** What one worker's gradient computation produced for its slice of the global batch. */
export interface GradientResult {
  /** d(loss)/d(parameter) for every trainable parameter, flattened in canonical order. */
  gradients: Float32Array;
  /** Sum of the per-example cross-entropies (not divided), from the pre-update forward pass. */
  lossSum: number;
  /** Examples whose arg-max logit equals the label. */
  correct: number;
  count: number;
}

export interface GradientOptions {
  /**
   * The loss is sum(cross-entropy) / `lossDenominator`. Workers pass the global batch size, so
   * that summing their gradients gives the gradient of the global batch's mean loss.
   */
  lossDenominator: number;
  /** Examples per forward/backward pass; the batch is processed in chunks of this size. */
  microBatch: number;
  /** Reused output buffer of `model.params.trainableCount` floats. */
  out?: Float32Array;
}

/**
 * Where the backward pass hands out finished buckets of the gradient: bucket k's values are in
 * `out[buckets[k].lo, buckets[k].hi)` when `ready(k)` is called, and stay untouched after it.
 */
export interface GradientRelease {
  /** Buckets of whole parameters (gradient-buckets.ts), together covering every parameter. */
  buckets: readonly GradientBucket[];
  ready(k: number): void;
}

interface ChunkResult {
  grads: tf.NamedTensorMap;
  lossSum: tf.Scalar;
  correct: tf.Scalar;
}

/**
 * One forward and backward pass over `count` images starting at image `start`. Everything but
 * the result is allocated in a tidy scope, so a throw (a bad shape, a backend failure) leaves no
 * tensor behind in a worker that lives on for many jobs. The loss sum and the correct count
 * must leave the gradient tape's own scope, hence tf.keep, which also takes them out of every
 * tidy: they are disposed here by hand when the pass throws, and so is the abandoned tape.
 */
function chunkGradients(model: TrainableModel, batch: ImageBatch, start: number, count: number, denominator: number): ChunkResult {
  const kept: tf.Tensor[] = [];
  try {
    return tf.tidy(() => {
      const variables = model.params.trainable.map((p) => p.variable);
      const pass = chunkLoss(model, batch, start, count, denominator, kept);
      const { grads } = tf.variableGrads(pass.loss, variables);
      return { grads, lossSum: pass.lossSum(), correct: pass.correct() };
    });
  } catch (error) {
    tf.dispose(kept);
    releaseAbandonedTape();
    throw error;
  }
}

/**
 * The chunk's loss as a function for the gradient tape, with the loss sum and the correct count
 * it keeps (pushed onto `kept` too, for the caller to free on a throw).
 */
function chunkLoss(model: TrainableModel, batch: ImageBatch, start: number, count: number, denominator: number, kept: tf.Tensor[]) {
  const keep = <T extends tf.Tensor>(tensor: T): T => {
    kept.push(tensor);
    return tf.keep(tensor);
  };
  const pixels = batch.size * batch.size;
  const x = tf.tensor4d(batch.x.subarray(start * pixels, (start + count) * pixels), [count, batch.size, batch.size, 1]);
  const labels = tf.tensor1d(batch.labels.subarray(start, start + count), 'int32');
  const oneHot = tf.oneHot(labels, model.classes);
  let lossSum: tf.Scalar | undefined;
  let correct: tf.Scalar | undefined;
  const loss = (): tf.Scalar => {
    const logits = model.forward(x, 'train');
    const nll = tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1));
    lossSum = keep(tf.sum(nll) as tf.Scalar);
    correct = keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32')) as tf.Scalar);
    return tf.div(lossSum, denominator) as tf.Scalar;
  };
  return { loss, lossSum: () => lossSum!, correct: () => correct! };
}

/**
 * The last chunk's forward and backward pass with its gradients written into `out` (plus
 * `previous`, the earlier chunks' sum, added as accumulate() adds it) parameter by parameter as
 * the backward pass finishes them, each bucket of `release` handed out once complete. The
 * backward pass yields to the event loop between tape nodes, so all-reduces started by `ready`
 * progress meanwhile. No tensor outlives the call but the loss sum and the correct count, also
 * on a throw (then not even those).
 */
async function releasingChunk(
  model: TrainableModel,
  batch: ImageBatch,
  range: { start: number; count: number; denominator: number },
  previous: ChunkResult | undefined,
  out: Float32Array,
  release: GradientRelease,
): Promise<{ lossSum: tf.Scalar; correct: tf.Scalar }> {
  const kept: tf.Tensor[] = [];
  const variables = model.params.trainable.map((p) => p.variable);
  const buckets = new BucketFill(release, variables.length);
  let pass: ReturnType<typeof chunkLoss> | undefined;
  let y: tf.Scalar;
  try {
    y = tf.tidy(() => {
      pass = chunkLoss(model, batch, range.start, range.count, range.denominator, kept);
      return tf.keep(recordForward(pass.loss));
    });
  } catch (error) {
    tf.dispose(kept);
    releaseAbandonedTape();
    throw error;
  }
  const offsets = parameterOffsets(variables);
  try {
    await backwardInSteps(y, variables, (indices, gradientOf) => {
      for (const i of indices) {
        copyTensorInto(previous ? tf.add(previous.grads[variables[i].name], gradientOf(i)) : gradientOf(i), out, offsets[i]);
      }
      buckets.filled(indices);
    });
    return { lossSum: pass!.lossSum(), correct: pass!.correct() };
  } catch (error) {
    tf.dispose(kept);
    throw error;
  } finally {
    y.dispose();
  }
}

/** Counts the parameters of each bucket still missing and hands a bucket out once none is. */
class BucketFill {
  private readonly missing: number[];
  private readonly bucketOf: Int32Array;

  constructor(
    private readonly release: GradientRelease,
    parameterCount: number,
  ) {
    this.missing = release.buckets.map((b) => b.parameters.length);
    this.bucketOf = new Int32Array(parameterCount).fill(-1);
    release.buckets.forEach((b, k) => b.parameters.forEach((i) => (this.bucketOf[i] = k)));
    if (this.bucketOf.includes(-1)) throw new RangeError('the buckets do not cover every parameter');
  }

  filled(indices: number[]): void {
    for (const i of indices) {
      const k = this.bucketOf[i];
      if (--this.missing[k] === 0) this.release.ready(k);
    }
  }
}

function parameterOffsets(variables: tf.Variable[]): number[] {
  const offsets: number[] = [];
  variables.reduce((offset, v, i) => ((offsets[i] = offset), offset + v.size), 0);
  return offsets;
}

/**
 * tfjs-core 4.22 keeps clones of a forward pass's inputs on its gradient tape for the backward
 * pass, kept out of every tidy, and frees them only once the backward pass ran: a pass that
 * throws leaves them on the tape until the next gradient computation replaces the tape. This
 * frees them as engine.gradients does after a backward pass (unless a gradient computation
 * outside ours is still running).
 */
function releaseAbandonedTape(): void {
  const state = tf.engine().state;
  if (state.gradientDepth !== 0 || !state.activeTape) return;
  for (const node of state.activeTape) tf.dispose(node.saved ?? []);
  state.activeTape = null as unknown as typeof state.activeTape;
}

function disposeChunk(chunk: ChunkResult): void {
  tf.dispose([chunk.grads, chunk.lossSum, chunk.correct]);
}

/** `total + next`, tensor by tensor; both inputs are disposed, also when the sum throws. */
function accumulate(total: ChunkResult, next: ChunkResult): ChunkResult {
  try {
    return tf.tidy(() => {
      const grads: tf.NamedTensorMap = {};
      for (const name of Object.keys(total.grads)) grads[name] = tf.add(total.grads[name], next.grads[name]);
      return { grads, lossSum: tf.add(total.lossSum, next.lossSum) as tf.Scalar, correct: tf.add(total.correct, next.correct) as tf.Scalar };
    });
  } finally {
    disposeChunk(total);
    disposeChunk(next);
  }
}

/**
 * Computes the gradient of sum(cross-entropy over `batch`) / lossDenominator, in chunks of
 * `microBatch` images whose gradients are summed. Batch norm then normalises each chunk with
 * the chunk's own statistics and updates its running statistics once per chunk, as PyTorch does
 * with gradient accumulation. No tensors outlive the call.
 */
export function computeGradients(model: TrainableModel, batch: ImageBatch, options: GradientOptions): GradientResult {
  if (batch.count === 0) throw new RangeError('computeGradients needs a non-empty batch');
  let total: ChunkResult | undefined;
  try {
    for (let start = 0; start < batch.count; start += options.microBatch) {
      const count = Math.min(options.microBatch, batch.count - start);
      const chunk = chunkGradients(model, batch, start, count, options.lossDenominator);
      total = total ? accumulate(total, chunk) : chunk;
    }
    const out = options.out ?? new Float32Array(model.params.trainableCount);
    let offset = 0;
    for (const { variable } of model.params.trainable) {
      copyTensorInto(total!.grads[variable.name], out, offset);
      offset += variable.size;
    }
    return { gradients: out, lossSum: total!.lossSum.dataSync()[0], correct: total!.correct.dataSync()[0], count: batch.count };
  } finally {
    // The chunks summed so far, also when a later chunk threw (disposing twice is a no-op).
    if (total) disposeChunk(total);
  }
}

/**
 * computeGradients whose last micro-batch hands out the gradient bucket by bucket while its
 * backward pass runs (`release`), last layers first; earlier micro-batches only accumulate, as
 * under DDP's no_sync. The gradients are the bits computeGradients gives.
 */
export async function computeGradientsReleasing(
  model: TrainableModel,
  batch: ImageBatch,
  options: GradientOptions,
  release: GradientRelease,
): Promise<GradientResult> {
  if (batch.count === 0) throw new RangeError('computeGradients needs a non-empty batch');
  const lastStart = Math.floor((batch.count - 1) / options.microBatch) * options.microBatch;
  let total: ChunkResult | undefined;
  let last: { lossSum: tf.Scalar; correct: tf.Scalar } | undefined;
  try {
    for (let start = 0; start < lastStart; start += options.microBatch) {
      const chunk = chunkGradients(model, batch, start, options.microBatch, options.lossDenominator);
      total = total ? accumulate(total, chunk) : chunk;
    }
    const out = options.out ?? new Float32Array(model.params.trainableCount);
    const range = { start: lastStart, count: batch.count - lastStart, denominator: options.lossDenominator };
    last = await releasingChunk(model, batch, range, total, out, release);
    // Summed in accumulate()'s order: the earlier chunks' total first.
    const sums = tf.tidy((): tf.Scalar[] =>
      total ? [tf.add(total.lossSum, last!.lossSum), tf.add(total.correct, last!.correct)] : [last!.lossSum.clone(), last!.correct.clone()],
    );
    const figures = { lossSum: sums[0].dataSync()[0], correct: sums[1].dataSync()[0] };
    tf.dispose(sums);
    return { gradients: out, ...figures, count: batch.count };
  } finally {
    if (total) disposeChunk(total);
    if (last) tf.dispose([last.lossSum, last.correct]);
  }
}
