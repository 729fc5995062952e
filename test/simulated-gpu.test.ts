/**
 * The simulated GPU of `bench scaling --simulate-gpu` (run config `simulateGpu`,
 * shared/train/simulated-gpu-gradients.ts) trains through the real loop: the option is checked
 * once, each step waits at least the simulated time, the stand-in gradient goes through the
 * real all-reduce and update and leaves every rank with the same weights (the same as one
 * rank's), no tensor leaks, and real worker processes of `launch --local` run it.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { trainingOptionsFromFlags } from '../coordinator/cli-flags.ts';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { compileTrainingOptions, type CompiledTrainingOptions, type TrainingOptions } from '../shared/config/training-options.ts';
import { limitImageSet, loadFashionMnist } from '../shared/data/fashion-mnist.ts';
import { ConfigError } from '../shared/errors.ts';
import { flattenValues } from '../shared/model/parameter-set.ts';
import { validateRunConfig } from '../shared/run/run-state.ts';
import { SoloCollective, type Collective } from '../shared/train/collective.ts';
import { createSeededModel } from '../shared/train/seeded-model.ts';
import { STAND_IN_GRADIENT } from '../shared/train/simulated-gpu-gradients.ts';
import { TrainingLoop, type StepReport, type TrainingData } from '../shared/train/training-loop.ts';
import { initialTrainingState } from '../shared/train/training-state.ts';
import { RingCollective } from '../worker/ring-collective.ts';
import { jsonLines } from './helpers/cli.ts';
import { startRing } from './helpers/ring.ts';
import { tinyLocalRun } from './helpers/tiny-local-run.ts';

const EXAMPLES_PER_SEC = 320;
const BATCH = 32;
const STEPS = 3;
const LR = 0.05;

test.before(async () => {
  await selectBackend('wasm');
});

test('simulateGpu is checked once: a bad rate or shape is a ConfigError naming simulate-gpu', (t) => {
  const bad: unknown[] = [{ examplesPerSec: 0 }, { examplesPerSec: -1 }, { examplesPerSec: Number.NaN }, { examplesPerSec: 1e9 }, { rate: 10 }, 5, null];
  for (const simulateGpu of bad) {
    const error = t.throws(() => compileTrainingOptions({ simulateGpu } as TrainingOptions), { instanceOf: ConfigError }, JSON.stringify(simulateGpu));
    t.is(error?.option, 'simulate-gpu');
    t.is(error?.code, 'CONFIG_INVALID');
  }
  const stored = t.throws(() => validateRunConfig({ workers: 2, backend: 'auto', simulateGpu: { examplesPerSec: -5 } }), { instanceOf: ConfigError });
  t.is(stored?.option, 'simulate-gpu', 'a run config is refused before it is stored');
  const flag = t.throws(() => trainingOptionsFromFlags({ 'simulate-gpu': 'fast' }), { instanceOf: ConfigError });
  t.is(flag?.option, 'simulate-gpu');
  t.deepEqual(compileTrainingOptions({ simulateGpu: { examplesPerSec: 2357.6 } }).simulateGpu, { examplesPerSec: 2357.6 });
  t.is(compileTrainingOptions({}).simulateGpu, undefined, 'the model computes unless asked');
  t.deepEqual(validateRunConfig({ workers: 2, backend: 'auto', ...trainingOptionsFromFlags({ 'simulate-gpu': '1000' }) }).simulateGpu, {
    examplesPerSec: 1000,
  });
});

/** Trainable weights after each step (the initial ones first) and the step reports of one rank. */
interface RankTrace {
  weights: Float32Array[];
  reports: StepReport[];
  /** tf.memory().numTensors after each step (of the process: both ranks' models are in it). */
  tensors: number[];
}

async function trainRank(data: TrainingData, options: CompiledTrainingOptions, collective: Collective): Promise<RankTrace> {
  const model = createSeededModel('tiny-cnn', 5);
  const trace: RankTrace = { weights: [flattenValues(model.params.trainable)], reports: [], tensors: [] };
  const loop = new TrainingLoop(model, data, options, collective, {
    onStep: (report) => {
      trace.reports.push(report);
      trace.weights.push(flattenValues(model.params.trainable));
      trace.tensors.push(tf.memory().numTensors);
    },
  });
  const outcome = await loop.run(initialTrainingState());
  model.dispose();
  if (outcome.kind !== 'completed') throw new Error(`training ${outcome.kind}`);
  return trace;
}

test.serial('two ranks over a real ring wait the simulated time and apply the same stand-in gradient as one rank', async (t) => {
  const dataset = await loadFashionMnist();
  const data = { train: limitImageSet(dataset.train, BATCH * STEPS), test: limitImageSet(dataset.test, 16) };
  const options = compileTrainingOptions({
    model: 'tiny-cnn',
    epochs: 1,
    batchSize: BATCH,
    resize: 28,
    lr: LR,
    simulateGpu: { examplesPerSec: EXAMPLES_PER_SEC },
  });
  const members = await startRing(2, { timeoutMs: 60_000 });
  t.teardown(() => Promise.all(members.map((member) => member.close())));
  const tensorsBefore = tf.memory().numTensors;
  const ranks = await Promise.all(
    members.map((member, rank) => trainRank(data, options, new RingCollective(member, rank, 2, { runId: 'simulated-gpu', generation: 0 }))),
  );
  const solo = await trainRank(data, options, new SoloCollective());

  const [first, second] = ranks;
  t.is(first.reports.length, STEPS);
  for (let step = 1; step <= STEPS; step += 1) {
    t.deepEqual(second.weights[step], first.weights[step], `step ${step}: both ranks hold the same bits`);
    t.deepEqual(solo.weights[step], first.weights[step], `step ${step}: as one rank does`);
    // p -= lr * STAND_IN_GRADIENT for every weight, up to the float32 rounding of p.
    const before = first.weights[step - 1];
    const after = first.weights[step];
    const worst = before.reduce((most, p, i) => Math.max(most, Math.abs(p - after[i] - LR * STAND_IN_GRADIENT)), 0);
    t.true(worst < 1e-6, `step ${step}: every weight moved by lr * ${STAND_IN_GRADIENT} (worst error ${worst})`);
  }
  // Each rank's slice is half the batch; the wait is a timer, so it cannot end before its time.
  const simulatedMs = (BATCH / 2 / EXAMPLES_PER_SEC) * 1000;
  for (const report of [...first.reports, ...second.reports]) {
    t.true(report.timings.computeMs >= simulatedMs, `compute took ${report.timings.computeMs} ms, the simulated GPU ${simulatedMs} ms`);
    t.is(report.loss, 0, 'no forward pass ran');
  }
  for (const report of solo.reports) t.true(report.timings.computeMs >= simulatedMs * 2);
  for (const trace of [...ranks, solo]) t.is(new Set(trace.tensors).size, 1, `tensor counts ${trace.tensors.join(',')} stay flat`);
  t.is(tf.memory().numTensors, tensorsBefore, 'the evaluation and the disposed models leave nothing behind');
});

test.serial('launch --local --simulate-gpu: real worker processes train the run to completion with the stand-in', async (t) => {
  const { launch, last } = await tinyLocalRun(t, ['--simulate-gpu', '2000'], {});
  t.is(launch.code, 0, launch.stderr);
  t.is(last?.status, 'completed');
  const epochs = jsonLines(launch.stdout).filter((line) => 'epoch' in line);
  t.true(epochs.length > 0, launch.stdout);
  t.true(
    epochs.every((line) => line.loss === 0),
    'the workers ran the simulated GPU, not the model',
  );
});
