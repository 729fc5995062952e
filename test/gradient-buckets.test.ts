/**
 * Gradient buckets (issue 10, item 4): planned as DDP plans them, all-reduced range by range to
 * the very bits of one all-reduce of the whole step buffer (gRPC ring and shared memory, 3
 * ranks), and handed out by the backward pass parameter by parameter with computeGradients'
 * bits and no tensor left behind.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { compileTrainingOptions } from '../shared/config/training-options.ts';
import { ConfigError } from '../shared/errors.ts';
import { validateRunConfig } from '../shared/run/run-state.ts';
import { buildBatch } from '../shared/data/batch-builder.ts';
import { loadFashionMnist } from '../shared/data/fashion-mnist.ts';
import type { TrainableModel } from '../shared/model/trainable-model.ts';
import type { BufferRange } from '../shared/train/collective.ts';
import { FIRST_BUCKET_BYTES, planBuckets } from '../shared/train/gradient-buckets.ts';
import { computeGradients, computeGradientsReleasing, type ImageBatch } from '../shared/train/gradient-step.ts';
import { createSeededModel } from '../shared/train/seeded-model.ts';
import { ShmAllReduce } from '../worker/collective/shm-allreduce.ts';
import { RingCollective, type SumAllReduce } from '../worker/ring-collective.ts';
import { ringOrderSum, startRing } from './helpers/ring.ts';
import { seededValues } from './helpers/seeded-values.ts';

const BATCH = 12;
const SIZE = 28;
let batch: ImageBatch;

test.before(async () => {
  await selectBackend('wasm');
  const { train } = await loadFashionMnist();
  batch = {
    ...buildBatch(
      train,
      Uint32Array.from({ length: BATCH }, (_, i) => i * 5),
      SIZE,
    ),
    count: BATCH,
    size: SIZE,
  };
});

function bits(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

test.serial('ResNet-18 buckets follow DDP: last parameters first, the first past 1 MiB, then past the cap, whole parameters, covering the gradient', (t) => {
  const model = createSeededModel('resnet18', 0);
  t.teardown(() => model.dispose());
  const sizes = model.params.trainable.map((p) => p.variable.size);
  const total = sizes.reduce((a, b) => a + b);
  t.deepEqual(planBuckets(sizes, 0), [], '0: off');
  for (const mb of [25, 5, 1]) {
    const buckets = planBuckets(sizes, mb);
    t.is(buckets[0].hi, total, `${mb} MiB: the first bucket ends the gradient`);
    t.is(buckets.at(-1)!.lo, 0);
    buckets.forEach((b, k) => {
      if (k > 0) t.is(b.hi, buckets[k - 1].lo, `${mb} MiB: bucket ${k} ends where the one before begins`);
      t.deepEqual(
        b.parameters,
        [...b.parameters].sort((x, y) => y - x),
        'parameters last first',
      );
      const bytes = b.parameters.reduce((sum, i) => sum + sizes[i] * 4, 0);
      t.is(bytes, (b.hi - b.lo) * 4);
      const withoutFirst = bytes - sizes[b.parameters.at(-1)!] * 4;
      const cap = k === 0 ? Math.min(FIRST_BUCKET_BYTES, mb * 2 ** 20) : mb * 2 ** 20;
      if (k < buckets.length - 1) t.true(bytes >= cap && withoutFirst < cap, `${mb} MiB: bucket ${k} closes at its cap`);
    });
  }
});

test.serial('--bucket-mb: 25 MiB by default, 0 or off for one all-reduce, anything else refused once; old stored runs get the default', (t) => {
  t.is(compileTrainingOptions({}).bucketMb, 25);
  t.is(compileTrainingOptions({ bucketMb: 'off' }).bucketMb, 0);
  t.is(compileTrainingOptions({ bucketMb: '0' }).bucketMb, 0);
  t.is(compileTrainingOptions({ bucketMb: '2.5' }).bucketMb, 2.5);
  for (const bad of ['on', '-1', '', 'Infinity', 5000]) {
    const error = t.throws(() => compileTrainingOptions({ bucketMb: bad }), { instanceOf: ConfigError }, JSON.stringify(bad));
    t.is(error?.option, 'bucket-mb');
  }
  t.is(validateRunConfig({ workers: 2, epochs: 1, backend: 'wasm' }).bucketMb, 25, 'a run stored before the option');
  t.is(validateRunConfig({ workers: 2, epochs: 1, backend: 'wasm', bucketMb: 0 }).bucketMb, 0);
});

/** Buckets that cut the ring's segments anywhere, some empty-ended, in reverse order as training uses them. */
function oddBuckets(length: number): BufferRange[] {
  const cuts = [0, 1, 7, Math.floor(length / 3) - 1, Math.floor(length / 3) + 5, Math.floor((2 * length) / 3), length - 2, length];
  return cuts
    .slice(1)
    .map((hi, i) => ({ lo: cuts[i], hi }))
    .reverse();
}

async function bucketedEqualsWhole(t: import('ava').ExecutionContext, transports: SumAllReduce[], label: string): Promise<void> {
  const length = 100_003;
  const ranks = transports.length;
  const collectives = transports.map((sum, rank) => new RingCollective(sum, rank, ranks, { runId: `buckets-${label}`, generation: 0 }));
  const inputs = collectives.map((_, rank) => seededValues(length, 40 + rank, 1e3));
  const whole = inputs.map((values) => values.slice());
  const bucketed = inputs.map((values) => values.slice());
  const tag = { step: 0, purpose: 'gradients' };
  await Promise.all(collectives.map((c, rank) => c.sumInPlace(whole[rank], tag)));
  await Promise.all(
    collectives.map(async (c, rank) => {
      for (const range of oddBuckets(length)) await c.sumRangeInPlace(bucketed[rank], range, tag);
    }),
  );
  const expected = bits(ringOrderSum(inputs));
  for (let rank = 0; rank < ranks; rank += 1) {
    t.deepEqual(bits(whole[rank]), expected, `${label}: one all-reduce, rank ${rank}`);
    t.deepEqual(bits(bucketed[rank]), expected, `${label}: bucket by bucket, rank ${rank}`);
  }
}

test.serial('3 ranks: a buffer all-reduced bucket by bucket on the gRPC ring has the bits of one all-reduce of it', async (t) => {
  const ring = await startRing(3);
  t.teardown(async () => {
    await Promise.all(ring.map((member) => member.close()));
  });
  await bucketedEqualsWhole(t, ring, 'grpc');
});

test.serial('3 ranks: the same on shared memory', async (t) => {
  const name = `/fmnist-test-buckets-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const groups = await Promise.all([0, 1, 2].map((rank) => ShmAllReduce.join({ name, rank, worldSize: 3, capacity: 100_003 })));
  t.teardown(async () => {
    await Promise.all(groups.map((group) => group.close()));
  });
  await bucketedEqualsWhole(
    t,
    groups.map((group) => ({ allReduceSum: (values, tag) => group.allReduceSum(values, tag) })),
    'shm',
  );
});

test.serial('a window that does not hold the vector is refused with COLLECTIVE_BAD_ARGUMENT', async (t) => {
  const ring = await startRing(2);
  t.teardown(async () => {
    await Promise.all(ring.map((member) => member.close()));
  });
  const error = await t.throwsAsync(ring[0].allReduceSum(new Float32Array(10), { runId: 'w', generation: 0, step: 0, window: { offset: 5, total: 12 } }));
  t.is((error as { code?: string }).code, 'COLLECTIVE_BAD_ARGUMENT');
});

async function released(model: TrainableModel, microBatch: number, bucketMb: number, images = batch) {
  const buckets = planBuckets(
    model.params.trainable.map((p) => p.variable.size),
    bucketMb,
  );
  const out = new Float32Array(model.params.trainableCount);
  const order: number[] = [];
  // What bucket k held when it was handed out: it must not change afterwards.
  const snapshots: Float32Array[] = [];
  const result = await computeGradientsReleasing(
    model,
    images,
    { lossDenominator: BATCH, microBatch, out },
    {
      buckets,
      ready: (k) => {
        order.push(k);
        snapshots[k] = out.slice(buckets[k].lo, buckets[k].hi);
      },
    },
  );
  buckets.forEach((b, k) => assertUnchanged(snapshots[k], out.subarray(b.lo, b.hi), k));
  return { result, order, buckets: buckets.length };
}

function assertUnchanged(a: Float32Array, b: Float32Array, k: number): void {
  if (!Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))) {
    throw new Error(`bucket ${k} changed after it was handed out`);
  }
}

// ResNet-18 (batch norm, residual sums) in one pass only: its passes take seconds on a loaded machine.
for (const [kind, bucketMb, microBatches] of [
  ['tiny-cnn', 0.001, [BATCH, 5]],
  ['resnet18', 5, [2]],
] as const) {
  test.serial(`${kind}: the backward pass hands out every bucket once, in order, with computeGradients' bits, and leaks no tensor`, async (t) => {
    const model = createSeededModel(kind, 1);
    t.teardown(() => model.dispose());
    // wasm's first pass may round differently from the later ones; compare warm passes.
    computeGradients(model, batch, { lossDenominator: BATCH, microBatch: microBatches[0] });
    for (const microBatch of microBatches) {
      // One micro-batch of ResNet-18 only (2 images), the rest of the batch accumulated on tiny-cnn.
      const images = kind === 'resnet18' ? { ...batch, count: microBatch } : batch;
      const expected = computeGradients(model, images, { lossDenominator: BATCH, microBatch });
      const before = tf.memory().numTensors;
      const { result, order, buckets } = await released(model, microBatch, bucketMb, images);
      t.is(tf.memory().numTensors, before, `micro-batch ${microBatch}: tensors`);
      t.true(buckets > 1);
      t.deepEqual(
        order,
        Array.from({ length: buckets }, (_, k) => k),
      );
      t.deepEqual(bits(result.gradients), bits(expected.gradients), `micro-batch ${microBatch}: gradient bits`);
      t.is(result.lossSum, expected.lossSum);
      t.is(result.correct, expected.correct);
    }
  });
}

test.serial('a backward pass that throws leaves no tensor behind and the next one works', async (t) => {
  const model = createSeededModel('tiny-cnn', 2);
  t.teardown(() => model.dispose());
  const before = tf.memory().numTensors;
  const buckets = planBuckets(
    model.params.trainable.map((p) => p.variable.size),
    0.001,
  );
  const ready = (k: number) => {
    if (k === 1) throw new RangeError('a failing consumer of bucket 1');
  };
  await t.throwsAsync(computeGradientsReleasing(model, batch, { lossDenominator: BATCH, microBatch: 5 }, { buckets, ready }), { instanceOf: RangeError });
  t.is(tf.memory().numTensors, before);
  t.falsy(tf.engine().state.activeTape, 'the abandoned tape is released');
  const { result } = await released(model, BATCH, 0.001);
  t.is(result.count, BATCH);
  t.is(tf.memory().numTensors, before);
});
