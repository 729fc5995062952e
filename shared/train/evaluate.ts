import * as tf from '@tensorflow/tfjs-core';
import type { ImageSet } from '../data/fashion-mnist.ts';
import { buildBatch } from '../data/batch-builder.ts';
import type { TrainableModel } from '../model/trainable-model.ts';

/** Correct predictions among images [start, end) of `set`, with batch norm in eval mode. */
export function countCorrect(model: TrainableModel, set: ImageSet, imageSize: number, batchSize: number, start = 0, end = set.count): number {
  let correct = 0;
  for (let first = start; first < end; first += batchSize) {
    const count = Math.min(batchSize, end - first);
    const indices = Uint32Array.from({ length: count }, (_, i) => first + i);
    const batch = buildBatch(set, indices, imageSize);
    const hits = tf.tidy(() => {
      const x = tf.tensor4d(batch.x, [count, imageSize, imageSize, 1]);
      const predicted = tf.argMax(model.forward(x, 'eval'), 1);
      return tf.sum(tf.cast(tf.equal(predicted, tf.tensor1d(batch.labels, 'int32')), 'int32'));
    });
    correct += hits.dataSync()[0]!;
    hits.dispose();
  }
  return correct;
}
