import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cliErrorCode, jsonLines, runCli } from './helpers/cli.ts';
import { listCheckpoints } from '../shared/train/checkpoint-store.ts';

test('coordinator summary --json prints the stage shapes and parameter count of ResNet-18', async (t) => {
  const result = await runCli('coordinator', ['summary', '--json']);
  t.is(result.code, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as unknown;
  t.deepEqual(summary, {
    input: [1, 224, 224, 1],
    stages: [
      [1, 56, 56, 64],
      [1, 56, 56, 64],
      [1, 28, 28, 128],
      [1, 14, 14, 256],
      [1, 7, 7, 512],
      [1, 512],
      [1, 10],
    ],
    trainableParams: 11178378,
  });
});

test('one epoch on 2,048 images at 28x28 reaches a test accuracy above 0.6 on 1,000 test images', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fmnist-train-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const args = [
    'train',
    '--epochs',
    '1',
    '--batch-size',
    '32',
    '--resize',
    '28',
    '--limit-train',
    '2048',
    '--limit-test',
    '1000',
    '--backend',
    'wasm',
    '--checkpoint-dir',
    dir,
    '--json',
  ];
  const result = await runCli('coordinator', args);
  t.is(result.code, 0, result.stderr);
  const [line, ...rest] = jsonLines(result.stdout);
  t.is(rest.length, 0, 'stdout holds one JSON object per epoch and nothing else');
  t.deepEqual(Object.keys(line), ['epoch', 'loss', 'trainAcc', 'testAcc', 'examplesPerSec', 'seconds', 'backend']);
  const epoch = line as { epoch: number; loss: number; trainAcc: number; testAcc: number; examplesPerSec: number; seconds: number; backend: string };
  t.is(epoch.epoch, 1);
  t.is(epoch.backend, 'wasm');
  t.log(JSON.stringify(epoch));
  // Accuracies are counts over exactly the limited sets: 2,048 training and 1,000 test images.
  for (const [acc, count] of [
    [epoch.trainAcc, 2048],
    [epoch.testAcc, 1000],
  ] as const) {
    t.true(acc >= 0 && acc <= 1, `accuracy ${acc}`);
    t.true(Math.abs(acc * count - Math.round(acc * count)) < 1e-6, `${acc} is not a count out of ${count}`);
  }
  // Throughput counts every training example of the epoch over its training time.
  t.true(epoch.seconds > 0);
  t.is(Math.round(epoch.examplesPerSec * epoch.seconds), 2048);
  // An untrained classifier scores chance (0.1) at a loss near ln 10 = 2.30; the epoch's mean
  // loss, taken before each update, includes those first steps and is still well below it.
  t.true(Number.isFinite(epoch.loss) && epoch.loss < 2.0, `loss ${epoch.loss}`);
  t.true(epoch.trainAcc > 0.3, `train accuracy ${epoch.trainAcc}`);
  t.true(epoch.testAcc > 0.6, `test accuracy ${epoch.testAcc}`);
});

test('a wrong flag or value is a one-line error and a non-zero exit', async (t) => {
  for (const args of [
    ['train', '--epochs', 'ten'],
    ['train', '--bogus'],
    ['train', '--backend', 'quantum'],
    ['train', '--lr', '-1'],
    ['launch', '--workers', '0', '--local'],
    ['frobnicate'],
  ]) {
    const result = await runCli('coordinator', args);
    t.not(result.code, 0, args.join(' '));
    t.is(result.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${result.stderr}`);
    t.is(cliErrorCode(result.stderr), 'CONFIG_INVALID', `${args.join(' ')}: ${result.stderr}`);
  }
});

test('resuming from a checkpoint of another model fails with CHECKPOINT_MISMATCH naming the file', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fmnist-mismatch-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tiny = await runCli('coordinator', [
    'train',
    '--model',
    'tiny-cnn',
    '--epochs',
    '1',
    '--batch-size',
    '64',
    '--resize',
    '28',
    '--limit-train',
    '64',
    '--limit-test',
    '16',
    '--backend',
    'wasm',
    '--checkpoint-dir',
    dir,
    '--json',
  ]);
  t.is(tiny.code, 0, tiny.stderr);
  const resnet = await runCli('coordinator', [
    'train',
    '--epochs',
    '2',
    '--resize',
    '28',
    '--limit-train',
    '64',
    '--limit-test',
    '16',
    '--backend',
    'wasm',
    '--checkpoint-dir',
    dir,
    '--resume',
  ]);
  t.is(resnet.code, 1);
  t.is(cliErrorCode(resnet.stderr), 'CHECKPOINT_MISMATCH', resnet.stderr);
  const newest = (await listCheckpoints(dir)).at(-1)!;
  t.true(resnet.stderr.includes(path.join(newest, 'model.json')), `the error names the file: ${resnet.stderr}`);
});

test('train keeps the newest three checkpoints, and --resume continues from the newest', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fmnist-train-keep-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const flags = [
    '--model',
    'tiny-cnn',
    '--batch-size',
    '32',
    '--resize',
    '28',
    '--limit-train',
    '96',
    '--limit-test',
    '32',
    '--backend',
    'wasm',
    '--checkpoint-dir',
    dir,
    '--json',
  ];
  const first = await runCli('coordinator', ['train', '--epochs', '5', ...flags]);
  t.is(first.code, 0, first.stderr);
  t.deepEqual(
    (await listCheckpoints(dir)).map((ckpt) => path.basename(ckpt)),
    ['ckpt-000000009', 'ckpt-000000012', 'ckpt-000000015'],
  );
  const more = await runCli('coordinator', ['train', '--epochs', '7', '--resume', ...flags]);
  t.is(more.code, 0, more.stderr);
  t.deepEqual(
    jsonLines(more.stdout).map((line) => line.epoch),
    [6, 7],
  );
  t.is(path.basename((await listCheckpoints(dir)).at(-1)!), 'ckpt-000000021');
});
