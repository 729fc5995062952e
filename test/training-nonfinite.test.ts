/**
 * A NaN in one rank's gradient is never applied (`nonfinite`, shared/train/training-loop.ts):
 * two ranks train over a real gRPC ring, rank 1's model turns its logits to NaN at a chosen
 * step, and every rank decides alike from the summed buffer: `fail` names the step and the
 * rank, `skip` leaves the weights of both ranks bit-identical to before the step and counts it.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import type { MetricValue } from 'prom-client';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { compileTrainingOptions, type NonFinitePolicy } from '../shared/config/training-options.ts';
import { limitImageSet, loadFashionMnist } from '../shared/data/fashion-mnist.ts';
import { NonFiniteGradientError } from '../shared/errors.ts';
import { flattenValues } from '../shared/model/parameter-set.ts';
import type { TrainableModel } from '../shared/model/trainable-model.ts';
import { runFailureOf } from '../shared/run/run-state.ts';
import { allFinite, checkGradient, flaggedRanks } from '../shared/train/finite-values.ts';
import { createSeededModel } from '../shared/train/seeded-model.ts';
import { TrainingLoop, type StepReport, type TrainingData } from '../shared/train/training-loop.ts';
import { initialTrainingState } from '../shared/train/training-state.ts';
import { RingCollective } from '../worker/ring-collective.ts';
import { WorkerMetrics } from '../worker/worker-metrics.ts';
import { startRing } from './helpers/ring.ts';

test.before(async () => {
  await selectBackend('wasm');
});

/** `model`, except that its training forward pass number `poisonedCall` (1-based) returns NaN logits. */
function poisonedModel(model: TrainableModel, poisonedCall: number): TrainableModel {
  let calls = 0;
  return {
    kind: model.kind,
    params: model.params,
    classes: model.classes,
    forward: (x, mode, onStage) => {
      const logits = model.forward(x, mode, onStage);
      if (mode !== 'train' || ++calls !== poisonedCall) return logits;
      return tf.mul(logits, Number.NaN);
    },
    buildLayersMirror: (size) => model.buildLayersMirror(size),
    dispose: () => model.dispose(),
  };
}

/** Two steps of 32 images (no micro-batches: one training forward pass per step). */
async function twoSteps(): Promise<TrainingData> {
  const dataset = await loadFashionMnist();
  return { train: limitImageSet(dataset.train, 64), test: limitImageSet(dataset.test, 16) };
}

interface RankRun {
  model: TrainableModel;
  loop: TrainingLoop;
  metrics: WorkerMetrics;
  /** Trainable weights after each step, in step order. */
  weights: Float32Array[];
  reports: StepReport[];
}

/** Two ranks on a real ring, rank 1 poisoned at its training forward pass `poisonedCall`. */
async function twoRanks(t: import('ava').ExecutionContext, policy: NonFinitePolicy, poisonedCall: number): Promise<RankRun[]> {
  const data = await twoSteps();
  const options = compileTrainingOptions({ model: 'tiny-cnn', epochs: 1, batchSize: 32, resize: 28, nonfinite: policy });
  const members = await startRing(2, { timeoutMs: 60_000 });
  const runs = members.map((member, rank): RankRun => {
    const seeded = createSeededModel('tiny-cnn', 3);
    const model = rank === 1 ? poisonedModel(seeded, poisonedCall) : seeded;
    const metrics = new WorkerMetrics();
    const job = metrics.startJob({ runId: 'nonfinite', rank, generation: 0, worldSize: 2, backend: 'wasm', threads: undefined });
    const run: RankRun = { model, metrics, weights: [flattenValues(model.params.trainable)], reports: [], loop: undefined as unknown as TrainingLoop };
    const collective = new RingCollective(member, rank, 2, { runId: 'nonfinite', generation: 0 });
    run.loop = new TrainingLoop(model, data, options, collective, {
      onStep: (report) => {
        job.step(report);
        run.reports.push(report);
        run.weights.push(flattenValues(model.params.trainable));
      },
    });
    return run;
  });
  t.teardown(async () => {
    for (const run of runs) run.model.dispose();
    await Promise.all(members.map((member) => member.close()));
  });
  return runs;
}

async function counter(metrics: WorkerMetrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values: MetricValue<string>[] = metric?.values ?? [];
  return values.find((v) => Object.entries(labels).every(([key, value]) => v.labels[key] === value))?.value;
}

test('allFinite tells a NaN or an infinity anywhere, and flaggedRanks names the flags that are set', (t) => {
  t.true(allFinite(new Float32Array([0, -1, 3.4e38, -3.4e38, 1e-45])));
  t.true(allFinite(new Float32Array(0)));
  // allFinite runs four totals side by side and the last length % 4 values apart: every position counts.
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    for (const at of [0, 1, 2, 3, 777, 999, 1000]) {
      const values = new Float32Array(1001).fill(1);
      values[at] = bad;
      t.false(allFinite(values), `${bad} at ${at}`);
    }
  }
  t.deepEqual(flaggedRanks(new Float32Array([0, 1, 0, 2])), [1, 3]);
});

test('checkGradient: bounded below 2^100 in magnitude, finite above, nonfinite with a NaN or an infinity anywhere', (t) => {
  t.is(checkGradient(new Float32Array([0, -0, 1e-3, -1, 2 ** 99, -(2 ** 99), 1e-45])), 'bounded');
  t.is(checkGradient(new Float32Array(0)), 'bounded');
  for (const large of [2 ** 100, -(2 ** 100), 3.4e38, -3.4e38]) t.is(checkGradient(new Float32Array([1, large, 1, 1, 1])), 'finite', String(large));
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    for (const at of [0, 1, 2, 3, 777, 999, 1000]) {
      const values = new Float32Array(1001).fill(-1);
      values[at] = bad;
      values[500] = 3e38;
      t.is(checkGradient(values), 'nonfinite', `${bad} at ${at}`);
    }
  }
});

test.serial('--nonfinite fail: both ranks fail at the poisoned step with GRADIENT_NONFINITE naming rank 1', async (t) => {
  const runs = await twoRanks(t, 'fail', 2);
  const tensorsBefore = tf.memory().numTensors;
  const results = await Promise.allSettled(runs.map((run) => run.loop.run(initialTrainingState())));
  for (const [rank, result] of results.entries()) {
    t.is(result.status, 'rejected', `rank ${rank}`);
    const error = (result as PromiseRejectedResult).reason as unknown;
    t.true(error instanceof NonFiniteGradientError, `rank ${rank}: ${String(error)}`);
    const typed = error as NonFiniteGradientError;
    t.is(typed.code, 'GRADIENT_NONFINITE');
    t.is(typed.globalStep, 2);
    t.deepEqual(typed.ranks, [1]);
    t.like(runFailureOf(typed, rank), { code: 'GRADIENT_NONFINITE', rank, globalStep: 2, nonfiniteRanks: [1] });
    t.is(runs[rank].reports.length, 1, 'only the first step was reported');
    t.deepEqual(runs[rank].weights.at(-1), runs[rank].weights[1], 'the failed step applied nothing');
  }
  t.is(tf.memory().numTensors, tensorsBefore, 'the failed step leaks no tensor');
});

test.serial('--nonfinite skip: the poisoned step leaves both ranks bit-identical to before it, and is counted once', async (t) => {
  const runs = await twoRanks(t, 'skip', 2);
  const outcomes = await Promise.all(runs.map((run) => run.loop.run(initialTrainingState())));
  for (const [rank, run] of runs.entries()) {
    t.is(outcomes[rank].kind, 'completed');
    t.deepEqual(
      run.reports.map((report) => report.skipped),
      [false, true],
    );
    t.notDeepEqual(run.weights[1], run.weights[0], 'the first step was applied');
    t.deepEqual(run.weights[2], run.weights[1], 'the skipped step left every weight as it was');
    t.deepEqual(flattenValues(run.model.params.trainable), run.weights[1], 'and so did the epoch end');
    t.true(Number.isFinite(outcomes[rank].state.history[0].loss), "the skipped step's loss stays out of the epoch's figures");
    t.is(await counter(run.metrics, 'fmnist_worker_nonfinite_steps_total', { run: 'nonfinite', rank: String(rank) }), 1);
  }
  t.deepEqual(runs[0].weights[2], runs[1].weights[2], 'both ranks hold the same weights');
});
