import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { CheckpointError } from '../shared/errors.ts';
import { flattenValues } from '../shared/model/parameter-set.ts';
import { latestCheckpoint, readCheckpoint, restoreNewestCheckpoint, writeCheckpoint } from '../shared/train/checkpoint-store.ts';
import { createSeededModel } from '../shared/train/seeded-model.ts';
import { initialTrainingState } from '../shared/train/training-state.ts';
import { REPO_ROOT } from './helpers/cli.ts';

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

/** Writes checkpoints of steps 1..count of tiny-cnn models seeded by their step; returns their folders. */
async function writeSteps(folder: string, count: number): Promise<string[]> {
  const written: string[] = [];
  for (let step = 1; step <= count; step += 1) {
    const model = createSeededModel('tiny-cnn', step);
    written.push(await writeCheckpoint(folder, model, 28, { ...initialTrainingState(), globalStep: step }, {}));
    model.dispose();
  }
  return written;
}

function weightsOf(seed: number): number[] {
  const model = createSeededModel('tiny-cnn', seed);
  const values = Array.from(flattenValues(model.params.all()));
  model.dispose();
  return values;
}

test.serial('resume falls back past damaged newest checkpoints to the newest intact one, naming each it skips', async (t) => {
  const folder = path.join(dir, 'fallback');
  const [, second, third] = await writeSteps(folder, 3);
  // The newest: one flipped bit in its weights (same size, so only the checksum can tell).
  const weights = path.join(third, 'weights.bin');
  const bytes = await readFile(weights);
  bytes[17] ^= 0x04;
  await writeFile(weights, bytes);
  const target = createSeededModel('tiny-cnn', 9);
  const skipped: { code: string; path: string }[] = [];
  const restored = await restoreNewestCheckpoint(folder, target, (error, damaged) => skipped.push({ code: error.code, path: damaged }));
  t.deepEqual(skipped, [{ code: 'CHECKPOINT_CORRUPT', path: third }]);
  t.is(restored?.path, second);
  t.is(restored?.state.globalStep, 2);
  t.deepEqual(Array.from(flattenValues(target.params.all())), weightsOf(2));

  // Then the one before it loses its state file as well: two skipped, the oldest restored.
  await rm(path.join(second, 'training-state.json'));
  skipped.length = 0;
  const older = await restoreNewestCheckpoint(folder, target, (error, damaged) => skipped.push({ code: error.code, path: damaged }));
  t.deepEqual(
    skipped.map((s) => s.code),
    ['CHECKPOINT_CORRUPT', 'CHECKPOINT_UNREADABLE'],
  );
  t.is(older?.state.globalStep, 1);
  t.deepEqual(Array.from(flattenValues(target.params.all())), weightsOf(1));
  target.dispose();
});

test.serial('every checkpoint damaged is CHECKPOINT_NONE_INTACT; one that does not fit the model is not skipped', async (t) => {
  const folder = path.join(dir, 'all-damaged');
  const [only] = await writeSteps(folder, 1);
  await writeFile(path.join(only, 'weights.bin'), 'short');
  const target = createSeededModel('tiny-cnn', 9);
  const error = await t.throwsAsync(
    restoreNewestCheckpoint(folder, target, () => {}),
    { instanceOf: CheckpointError },
  );
  t.is(error?.code, 'CHECKPOINT_NONE_INTACT');
  t.is((error?.cause as CheckpointError).code, 'CHECKPOINT_TRUNCATED');

  const resnet = createSeededModel('resnet18', 1);
  const fits = path.join(dir, 'fits');
  await writeSteps(fits, 2);
  const warned: string[] = [];
  const mismatch = await t.throwsAsync(
    restoreNewestCheckpoint(fits, resnet, (e) => warned.push(e.code)),
    { instanceOf: CheckpointError },
  );
  t.is(mismatch?.code, 'CHECKPOINT_MISMATCH');
  t.deepEqual(warned, []);
  t.is(await restoreNewestCheckpoint(path.join(dir, 'none'), target, () => {}), undefined);
  target.dispose();
  resnet.dispose();
});

/**
 * A disk that fills up: a 64 KiB tmpfs mounted in a mount namespace of the child's own
 * (`unshare --mount`, so no mount outlives the child; not as root, in a user namespace too).
 */
test.serial('a full disk fails the checkpoint write with ENOSPC, leaves the previous one intact and no partial folder', async (t) => {
  const disk = await mkdtemp(path.join(os.tmpdir(), 'fmnist-full-disk-'));
  const script = 'mount -t tmpfs -o size=64k tmpfs "$1" && exec "$2" --import tsx test/helpers/full-disk-checkpoint.ts "$1"';
  const stdout = await new Promise<string>((resolve, reject) => {
    // As root (CI) a mount namespace alone; otherwise inside a user namespace of our own.
    const namespaces = process.getuid?.() === 0 ? ['--mount'] : ['--mount', '--map-root-user'];
    execFile('unshare', [...namespaces, 'sh', '-c', script, 'sh', disk, process.execPath], { cwd: REPO_ROOT }, (error, out, err) =>
      error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out),
    );
  });
  await rm(disk, { recursive: true, force: true });
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    failure?: { code: string; errno?: string; file?: string };
    afterFailure: string[];
    restoredEqual: boolean;
    retried: string;
    afterRetry: string[];
  };
  t.deepEqual(result.failure, { code: 'CHECKPOINT_WRITE_FAILED', errno: 'ENOSPC', file: path.join(disk, 'run', 'ckpt-000000002') });
  t.deepEqual(result.afterFailure, ['ckpt-000000001']);
  t.true(result.restoredEqual);
  // Once there is room again, the same step is written.
  t.is(result.retried, 'ckpt-000000002');
  t.deepEqual(result.afterRetry, ['ckpt-000000001', 'ckpt-000000002']);
});
