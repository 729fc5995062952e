import test from 'ava';
import { mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { CheckpointError } from '../shared/errors.ts';
import { latestCheckpoint, readCheckpoint, writeCheckpoint } from '../shared/train/checkpoint-store.ts';
import { createSeededModel } from '../shared/train/seeded-model.ts';
import { initialTrainingState } from '../shared/train/training-state.ts';

let dir: string;
test.before(async () => {
  await selectBackend('cpu');
  dir = await mkdtemp(path.join(os.tmpdir(), 'fmnist-ckpt-'));
});
test.after.always(() => rm(dir, { recursive: true, force: true }));

/** tf.loadLayersModel over plain files (tfjs-node's file:// handler is not installed here). */
function fileHandler(folder: string): tf.io.IOHandler {
  return {
    async load() {
      const model = JSON.parse(await readFile(path.join(folder, 'model.json'), 'utf8')) as tf.io.ModelJSON;
      const weights = await readFile(path.join(folder, 'weights.bin'));
      return {
        modelTopology: model.modelTopology,
        weightSpecs: model.weightsManifest.flatMap((g) => g.weights),
        weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
      };
    },
  };
}

test.serial('a ResNet-18 checkpoint loads with tf.loadLayersModel and predicts what the model predicts', async (t) => {
  const model = createSeededModel('resnet18', 4);
  const state = { ...initialTrainingState(), epoch: 1, globalStep: 7 };
  const written = await writeCheckpoint(path.join(dir, 'resnet'), model, 32, state, { note: 'config' });
  t.is(path.basename(written), 'ckpt-000000007');
  const loaded = await tfl.loadLayersModel(fileHandler(written));
  t.is(loaded.countParams(), model.params.trainableCount + model.params.runningStats.reduce((s, p) => s + p.variable.size, 0));
  const x = tf.randomUniform([2, 32, 32, 1], 0, 1, 'float32', 1) as tf.Tensor4D;
  const ours = model.forward(x, 'eval').dataSync();
  const theirs = (loaded.predict(x) as tf.Tensor).dataSync();
  const scale = Math.max(...Array.from(ours, Math.abs));
  const diff = Math.max(...Array.from(ours, (v, i) => Math.abs(v - theirs[i])));
  // Same float32 weights through two implementations of the same ops (tfjs-layers pads then
  // convolves 'valid'); differences are summation-order rounding only.
  t.true(diff <= 1e-5 * scale, `max |ours - layers| = ${diff} for logits up to ${scale}`);
  loaded.dispose();
  model.dispose();
});

test.serial('reading a checkpoint restores the weights and the training state', async (t) => {
  const source = createSeededModel('tiny-cnn', 1);
  const state = { ...initialTrainingState(), epoch: 2, stepInEpoch: 3, globalStep: 23, totals: { lossSum: 4.5, correct: 3, count: 9, seconds: 1.5 } };
  await writeCheckpoint(path.join(dir, 'tiny'), source, 28, state, { epochs: 5 });
  const target = createSeededModel('tiny-cnn', 2);
  const saved = await readCheckpoint<{ epochs: number }>((await latestCheckpoint(path.join(dir, 'tiny')))!, target);
  t.deepEqual(saved.state, state);
  t.deepEqual(saved.config, { epochs: 5 });
  for (const [i, { variable }] of source.params.all().entries()) {
    t.deepEqual(Array.from(target.params.all()[i].variable.dataSync()), Array.from(variable.dataSync()));
  }
  source.dispose();
  target.dispose();
});

test.serial('a checkpoint of another model, or a truncated one, is a clear CheckpointError', async (t) => {
  const tiny = createSeededModel('tiny-cnn', 1);
  const folder = await writeCheckpoint(path.join(dir, 'other'), tiny, 28, initialTrainingState(), {});
  const resnet = createSeededModel('resnet18', 1);
  const mismatch = await t.throwsAsync(readCheckpoint(folder, resnet), { instanceOf: CheckpointError });
  t.is(mismatch?.code, 'CHECKPOINT_MISMATCH');
  t.is(mismatch?.file, path.join(folder, 'model.json'));
  const weights = path.join(folder, 'weights.bin');
  await writeFile(weights, (await readFile(weights)).subarray(0, 100));
  const truncated = await t.throwsAsync(readCheckpoint(folder, tiny), { instanceOf: CheckpointError });
  t.is(truncated?.code, 'CHECKPOINT_TRUNCATED');
  t.is(truncated?.file, weights);
  tiny.dispose();
  resnet.dispose();
});

test.serial('an interrupted write leaves no checkpoint with a final name', async (t) => {
  const folder = path.join(dir, 'partial');
  const tiny = createSeededModel('tiny-cnn', 1);
  await writeCheckpoint(folder, tiny, 28, { ...initialTrainingState(), globalStep: 1 }, {});
  // What a crash mid-write leaves behind: a temporary folder, never renamed.
  await writeFile(path.join(folder, '.tmp-ckpt-000000002-1-1'), '');
  t.is(path.basename((await latestCheckpoint(folder))!), 'ckpt-000000001');
  t.true((await readdir(folder)).includes('.tmp-ckpt-000000002-1-1'));
  tiny.dispose();
});
