import * as tf from '@tensorflow/tfjs-core';
import './register-gradients.ts';
import { copyTensorInto } from '../backend/copy-tensor-into.ts';
import type { TrainableModel } from '../model/trainable-model.ts';

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

interface ChunkResult {
  grads: tf.NamedTensorMap;
  lossSum: tf.Scalar;
  correct: tf.Scalar;
}

/** One forward and backward pass over `count` images starting at image `start`. */
function chunkGradients(model: TrainableModel, batch: ImageBatch, start: number, count: number, denominator: number): ChunkResult {
  const pixels = batch.size * batch.size;
  const x = tf.tensor4d(batch.x.subarray(start * pixels, (start + count) * pixels), [count, batch.size, batch.size, 1]);
  const labels = tf.tensor1d(batch.labels.subarray(start, start + count), 'int32');
  const oneHot = tf.oneHot(labels, model.classes);
  let lossSum: tf.Scalar | undefined;
  let correct: tf.Scalar | undefined;
  const variables = model.params.trainable.map((p) => p.variable);
  const { value, grads } = tf.variableGrads(() => {
    const logits = model.forward(x, 'train');
    const nll = tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1));
    const sum = tf.keep(tf.sum(nll) as tf.Scalar);
    lossSum = sum;
    correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32')) as tf.Scalar);
    return tf.div(sum, denominator) as tf.Scalar;
  }, variables);
  tf.dispose([x, labels, oneHot, value]);
  return { grads, lossSum: lossSum!, correct: correct! };
}

function disposeChunk(chunk: ChunkResult): void {
  tf.dispose([chunk.grads, chunk.lossSum, chunk.correct]);
}

/** Adds `next` into `total` (tensor by tensor) and disposes both inputs' replaced tensors. */
function accumulate(total: ChunkResult, next: ChunkResult): ChunkResult {
  const sum = (a: tf.Tensor, b: tf.Tensor) => tf.add(a, b);
  const grads: tf.NamedTensorMap = {};
  for (const name of Object.keys(total.grads)) grads[name] = sum(total.grads[name]!, next.grads[name]!);
  const merged = { grads, lossSum: sum(total.lossSum, next.lossSum) as tf.Scalar, correct: sum(total.correct, next.correct) as tf.Scalar };
  disposeChunk(total);
  disposeChunk(next);
  return merged;
}

/**
 * Computes the gradient of sum(cross-entropy over `batch`) / lossDenominator, in chunks of
 * `microBatch` images whose gradients are summed. Batch norm then normalises each chunk with
 * the chunk's own statistics and updates its running statistics once per chunk, as PyTorch does
 * with gradient accumulation. No tensors outlive the call.
 */
export function computeGradients(model: TrainableModel, batch: ImageBatch, options: GradientOptions): GradientResult {
  let total: ChunkResult | undefined;
  for (let start = 0; start < batch.count; start += options.microBatch) {
    const count = Math.min(options.microBatch, batch.count - start);
    const chunk = chunkGradients(model, batch, start, count, options.lossDenominator);
    total = total ? accumulate(total, chunk) : chunk;
  }
  if (!total) throw new RangeError('computeGradients needs a non-empty batch');
  const out = options.out ?? new Float32Array(model.params.trainableCount);
  let offset = 0;
  for (const { variable } of model.params.trainable) {
    copyTensorInto(total.grads[variable.name]!, out, offset);
    offset += variable.size;
  }
  const result = { gradients: out, lossSum: total.lossSum.dataSync()[0]!, correct: total.correct.dataSync()[0]!, count: batch.count };
  disposeChunk(total);
  return result;
}
