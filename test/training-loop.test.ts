import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { compileTrainingOptions } from '../shared/config/training-options.ts';
import { limitImageSet, loadFashionMnist } from '../shared/data/fashion-mnist.ts';
import { SoloCollective } from '../shared/train/collective.ts';
import { createSeededModel } from '../shared/train/seeded-model.ts';
import { TrainingLoop } from '../shared/train/training-loop.ts';
import { initialTrainingState } from '../shared/train/training-state.ts';
import { flattenValues } from '../shared/model/parameter-set.ts';

test.before(async () => {
  await selectBackend('wasm');
});

test.serial('tf.memory().numTensors stays flat over 20 ResNet-18 training steps and an evaluation', async (t) => {
  const dataset = await loadFashionMnist();
  const data = { train: limitImageSet(dataset.train, 20 * 8), test: limitImageSet(dataset.test, 16) };
  const options = compileTrainingOptions({ epochs: 1, batchSize: 8, resize: 28, microBatch: 4 });
  const model = createSeededModel('resnet18', 0);
  const counts: number[] = [];
  const loop = new TrainingLoop(model, data, options, new SoloCollective(), { onStep: () => counts.push(tf.memory().numTensors) });
  const before = tf.memory().numTensors;
  const outcome = await loop.run(initialTrainingState());
  t.is(outcome.kind, 'completed');
  t.is(counts.length, 20);
  t.true(
    counts.every((count) => count === before),
    `tensor counts ${[before, ...counts].join(',')}`,
  );
  t.is(tf.memory().numTensors, before, 'the evaluation at the epoch end leaks nothing either');
  model.dispose();
});

test.serial('the same seed gives the same weights after the same steps, a different seed does not', async (t) => {
  const dataset = await loadFashionMnist();
  const data = { train: limitImageSet(dataset.train, 96), test: limitImageSet(dataset.test, 16) };
  const run = async (seed: number) => {
    const model = createSeededModel('tiny-cnn', seed);
    await new TrainingLoop(model, data, compileTrainingOptions({ model: 'tiny-cnn', epochs: 1, batchSize: 32, resize: 28, seed }), new SoloCollective()).run(
      initialTrainingState(),
    );
    const weights = flattenValues(model.params.trainable);
    model.dispose();
    return weights;
  };
  const a = await run(7);
  t.deepEqual(await run(7), a);
  t.notDeepEqual(await run(8), a);
});

test.serial('a stop request ends training after the current step with the state of that step', async (t) => {
  const dataset = await loadFashionMnist();
  const data = { train: limitImageSet(dataset.train, 320), test: limitImageSet(dataset.test, 16) };
  const model = createSeededModel('tiny-cnn', 1);
  let steps = 0;
  const saved: number[] = [];
  const loop = new TrainingLoop(model, data, compileTrainingOptions({ model: 'tiny-cnn', epochs: 2, batchSize: 32, resize: 28 }), new SoloCollective(), {
    onStep: () => void (steps += 1),
    stopRequested: () => steps >= 3,
    saveCheckpoint: (state) => Promise.resolve(void saved.push(state.globalStep)),
  });
  const outcome = await loop.run(initialTrainingState());
  t.is(outcome.kind, 'stopped');
  t.is(outcome.state.globalStep, 4, 'the vote is cast with the step, which still completes');
  t.is(outcome.state.stepInEpoch, 4);
  t.deepEqual(saved, [4], 'a checkpoint is written where it stopped');
  model.dispose();
});
