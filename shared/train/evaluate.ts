import * as tf from '@tensorflow/tfjs-core';
import type { ImageSet } from '../data/fashion-mnist.ts';
import { buildBatch } from '../data/batch-builder.ts';
import type { TrainableModel } from '../model/trainable-model.ts';

/** Sums over the evaluated images (divide by their count for accuracy and mean loss). */
export interface EvaluationSums {
  /** Images whose arg-max logit equals the label. */
  correct: number;
  /** Sum of the per-image cross-entropies. */
  lossSum: number;
}

/** Correct predictions and summed cross-entropy over images [start, end) of `set`, batch norm in eval mode. */
export function evaluateSlice(model: TrainableModel, set: ImageSet, imageSize: number, batchSize: number, start = 0, end = set.count): EvaluationSums {
  const sums: EvaluationSums = { correct: 0, lossSum: 0 };
  for (let first = start; first < end; first += batchSize) {
    const count = Math.min(batchSize, end - first);
    const indices = Uint32Array.from({ length: count }, (_, i) => first + i);
    const batch = buildBatch(set, indices, imageSize);
    const figures = tf.tidy(() => {
      const x = tf.tensor4d(batch.x, [count, imageSize, imageSize, 1]);
      const labels = tf.tensor1d(batch.labels, 'int32');
      const logits = model.forward(x, 'eval');
      const correct = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'));
      const lossSum = tf.neg(tf.sum(tf.mul(tf.oneHot(labels, model.classes), tf.logSoftmax(logits))));
      return tf.stack([correct, lossSum]);
    });
    const [correct, lossSum] = figures.dataSync();
    figures.dispose();
    sums.correct += correct;
    sums.lossSum += lossSum;
  }
  return sums;
}
