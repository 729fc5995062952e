/**
 * `--grad-compression` in training (shared/train/training-loop.ts): the option is checked once
 * (ConfigError naming it) and a run stored before it existed has none; two ranks on a real gRPC
 * ring with `fp16` send half the bytes (fmnist_allreduce_sent_bytes_total), keep the loss and
 * example counts that ride with the gradient exact, and still end every step with bit-identical
 * weights on every rank; `none` stays the float32 sum.
 */
import test from 'ava';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { compileTrainingOptions, gradCompressionNote, type GradCompression } from '../shared/config/training-options.ts';
import { limitImageSet, loadFashionMnist } from '../shared/data/fashion-mnist.ts';
import { ConfigError } from '../shared/errors.ts';
import { flattenValues } from '../shared/model/parameter-set.ts';
import { validateRunConfig } from '../shared/run/run-state.ts';
import { createSeededModel } from '../shared/train/seeded-model.ts';
import { TrainingLoop, type StepReport } from '../shared/train/training-loop.ts';
import { initialTrainingState } from '../shared/train/training-state.ts';
import { RingCollective } from '../worker/ring-collective.ts';
import { WorkerMetrics } from '../worker/worker-metrics.ts';
import { startRing } from './helpers/ring.ts';

test.before(async () => {
  await selectBackend('wasm');
});

test('grad-compression is none by default, fp16 on request, and anything else a ConfigError naming the option', (t) => {
  t.is(compileTrainingOptions({}).gradCompression, 'none');
  t.is(compileTrainingOptions({ gradCompression: 'fp16' }).gradCompression, 'fp16');
  for (const bad of ['fp8', 'FP16', '', 'bf16']) {
    const error = t.throws(() => compileTrainingOptions({ gradCompression: bad }), { instanceOf: ConfigError });
    t.is(error?.code, 'CONFIG_INVALID');
    t.is(error?.option, 'grad-compression');
  }
  // A run stored before the option existed compiles to none, and compares equal to one launched today without the flag.
  t.is(validateRunConfig({ workers: 2, backend: 'auto' }).gradCompression, 'none');
  t.deepEqual(validateRunConfig({ workers: 2, backend: 'auto' }), validateRunConfig({ workers: 2, backend: 'auto', gradCompression: 'none' }));
  t.is(t.throws(() => validateRunConfig({ workers: 2, backend: 'auto', gradCompression: 'int8' }), { instanceOf: ConfigError })?.option, 'grad-compression');
  // status and report name it beside the other options only when it is on, so other runs read as before.
  t.is(gradCompressionNote('fp16'), ', gradients fp16');
  t.is(gradCompressionNote('none'), '');
  t.is(gradCompressionNote(undefined), '');
});

interface RankResult {
  reports: StepReport[];
  /** Trainable weights after each step. */
  weights: Float32Array[];
  sentBytes: number;
}

async function sentBytes(metrics: WorkerMetrics): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'fmnist_allreduce_sent_bytes_total');
  return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

/** Two ranks of tiny-cnn train two steps of 32 images over a real ring. */
async function twoRanks(t: import('ava').ExecutionContext, gradCompression: GradCompression, bucketMb: number | string = 25): Promise<RankResult[]> {
  const dataset = await loadFashionMnist();
  const data = { train: limitImageSet(dataset.train, 64), test: limitImageSet(dataset.test, 16) };
  const options = compileTrainingOptions({ model: 'tiny-cnn', epochs: 1, batchSize: 32, resize: 28, lr: 0.1, gradCompression, bucketMb });
  const members = await startRing(2, { timeoutMs: 60_000 });
  const models = [0, 1].map(() => createSeededModel('tiny-cnn', 5));
  t.teardown(async () => {
    for (const model of models) model.dispose();
    await Promise.all(members.map((member) => member.close()));
  });
  return Promise.all(
    members.map(async (member, rank) => {
      const metrics = new WorkerMetrics();
      const job = metrics.startJob({ runId: 'fp16', rank, generation: 0, worldSize: 2, backend: 'wasm', threads: undefined });
      const result: RankResult = { reports: [], weights: [], sentBytes: 0 };
      const collective = new RingCollective(member, rank, 2, { runId: 'fp16', generation: 0 }, (purpose, timings) => {
        if (purpose === 'gradients') job.allReduce(timings);
      });
      const loop = new TrainingLoop(models[rank], data, options, collective, {
        onStep: (report) => {
          result.reports.push(report);
          result.weights.push(flattenValues(models[rank].params.trainable));
        },
      });
      await loop.run(initialTrainingState());
      result.sentBytes = await sentBytes(metrics);
      return result;
    }),
  );
}

test.serial('fp16: half the gradient bytes, the same loss figures, weights bit-identical on both ranks but not the float32 ones', async (t) => {
  const plain = await twoRanks(t, 'none');
  const compressed = await twoRanks(t, 'fp16');
  const parameters = plain[0].weights[0].length;
  for (const rank of [0, 1]) {
    // Two gradient all-reduces of (parameters + 4 figures + 2 flags) values; each rank sends the whole vector once per all-reduce.
    t.is(plain[rank].sentBytes, 2 * (parameters + 6) * 4, `rank ${rank} sent float32`);
    const least = 2 * (parameters * 2 + 6 * 4);
    t.true(compressed[rank].sentBytes >= least && compressed[rank].sentBytes <= least + 8, `rank ${rank} sent ${compressed[rank].sentBytes}, about half`);
    // The first step's loss is computed before any update and travels in float32: exactly the same.
    t.is(compressed[rank].reports[0].loss, plain[rank].reports[0].loss);
    t.is(compressed[rank].reports[0].examples, plain[rank].reports[0].examples);
  }
  for (let step = 0; step < 2; step += 1) {
    t.deepEqual(compressed[0].weights[step], compressed[1].weights[step], `fp16 step ${step + 1}: ranks agree bit for bit`);
    t.deepEqual(plain[0].weights[step], plain[1].weights[step], `none step ${step + 1}: ranks agree bit for bit`);
  }
  t.notDeepEqual(compressed[0].weights[0], plain[0].weights[0], 'the rounded gradient moved the weights elsewhere');
});

test.serial('fp16 with small gradient buckets gives the bits of one compressed all-reduce after the backward pass', async (t) => {
  // 0.002 MiB: tiny-cnn's gradient in several buckets, each all-reduced (compressed) during the backward pass.
  const bucketed = await twoRanks(t, 'fp16', 0.002);
  const whole = await twoRanks(t, 'fp16', 'off');
  for (let step = 0; step < 2; step += 1) {
    t.deepEqual(bucketed[0].weights[step], whole[0].weights[step], `step ${step + 1}`);
    t.deepEqual(bucketed[1].weights[step], whole[1].weights[step], `step ${step + 1}`);
  }
  t.true(
    bucketed[0].reports.some((report) => report.timings.allReducesDuringCompute > 0),
    'some bucket was all-reduced during the backward pass',
  );
});
