/**
 * computeGradients with --micro-batch: on a model without batch norm, the chunks' summed
 * gradients are the full batch's gradient (up to float32 summation order), and no tensor
 * outlives the call, not even when a chunk throws.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { buildBatch } from '../shared/data/batch-builder.ts';
import { loadFashionMnist } from '../shared/data/fashion-mnist.ts';
import type { TrainableModel } from '../shared/model/trainable-model.ts';
import { computeGradients, type ImageBatch } from '../shared/train/gradient-step.ts';
import { createSeededModel } from '../shared/train/seeded-model.ts';
import { scaledError } from './helpers/backend-comparison.ts';

/** Images in the test batch: micro-batches of 8, 5 and 1 split it evenly and unevenly. */
const BATCH = 24;
const SIZE = 28;
/**
 * max |micro - full| / max |full| allowed. Summing 24 per-image gradients in other groups
 * changes float32 rounding only: measured below 1e-6 on wasm;
 * a dropped or doubled chunk is off by a few percent or more.
 */
const TOLERANCE = 1e-5;

let batch: ImageBatch;
test.before(async () => {
  await selectBackend('wasm');
  const { train } = await loadFashionMnist();
  const indices = Uint32Array.from({ length: BATCH }, (_, i) => i * 7);
  batch = { ...buildBatch(train, indices, SIZE), count: BATCH, size: SIZE };
});

function gradients(model: TrainableModel, microBatch: number): ReturnType<typeof computeGradients> {
  return computeGradients(model, batch, { lossDenominator: BATCH, microBatch });
}

test.serial('micro-batch gradients of tiny-cnn equal the full-batch gradient within 1e-5 of its scale', (t) => {
  const model = createSeededModel('tiny-cnn', 3);
  t.teardown(() => model.dispose());
  const full = gradients(model, BATCH);
  t.deepEqual(gradients(model, BATCH).gradients, full.gradients, 'the same call gives the same bits');
  for (const microBatch of [8, 5, 1]) {
    const micro = gradients(model, microBatch);
    const error = scaledError(micro.gradients, full.gradients);
    t.log(`micro-batch ${microBatch}: scaled error ${error.toExponential(2)}`);
    t.true(error <= TOLERANCE, `micro-batch ${microBatch}: scaled error ${error}`);
    t.true(Math.abs(micro.lossSum - full.lossSum) <= TOLERANCE * full.lossSum, `micro-batch ${microBatch}: loss sum ${micro.lossSum} vs ${full.lossSum}`);
    t.is(micro.correct, full.correct);
    t.is(micro.count, BATCH);
  }
});

test.serial('tensor count is flat over micro-batched gradient computations', (t) => {
  const model = createSeededModel('tiny-cnn', 4);
  t.teardown(() => model.dispose());
  const before = tf.memory().numTensors;
  for (const microBatch of [BATCH, 8, 5]) gradients(model, microBatch);
  t.is(tf.memory().numTensors, before);
});

test.serial('a chunk that throws leaves no tensor behind, nor do the chunks summed before it', (t) => {
  const model = createSeededModel('tiny-cnn', 5);
  t.teardown(() => model.dispose());
  let passes = 0;
  // The real network, failing on its third forward pass after allocating its activations.
  const failing: TrainableModel = {
    kind: model.kind,
    params: model.params,
    classes: model.classes,
    forward: (x, mode) => {
      const logits = model.forward(x, mode);
      passes += 1;
      if (passes === 3) throw new RangeError('backend failure in the third chunk');
      return logits;
    },
    buildLayersMirror: (imageSize) => model.buildLayersMirror(imageSize),
    dispose: () => model.dispose(),
  };
  const before = tf.memory().numTensors;
  t.throws(() => gradients(failing, 8), { instanceOf: RangeError });
  t.is(passes, 3);
  t.is(tf.memory().numTensors, before);
});
