/**
 * Overlap in a real training run (issue 10, item 4): two worker processes train with gradient
 * buckets reduced during the backward pass and end with the very weights of a run that reduces
 * the step buffer once after it, on the gRPC ring and on shared memory; the bucketed runs start
 * their first all-reduce before the gradient computation has finished, every step.
 */
import test from 'ava';
import type { BucketTrainOptions } from './helpers/bucket-train-process.ts';
import { trainRanks } from './helpers/bucket-train-handle.ts';

/** 2 steps of 16 images over 2 ranks; buckets of 1 KiB give tiny-cnn's 6 parameters 4 buckets. */
const RUN: Omit<BucketTrainOptions, 'rank' | 'transport' | 'training'> = { worldSize: 2, backend: 'wasm', model: 'tiny-cnn' };
const TRAINING = { epochs: 1, batchSize: 16, resize: 28, seed: 3, limitTrain: 32, limitTest: 16, lr: 0.05 };

function shmName(): string {
  return `/fmnist-test-overlap-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

test('bucketed runs reach the bits of the unbucketed run on both transports, and overlap the backward pass', async (t) => {
  const [grpcBuckets, shmBuckets] = await Promise.all([
    trainRanks({ ...RUN, transport: 'grpc', training: { ...TRAINING, bucketMb: 0.001 } }),
    trainRanks({ ...RUN, transport: 'shm', shmName: shmName(), training: { ...TRAINING, bucketMb: '0.001' } }),
  ]);
  const once = await trainRanks({ ...RUN, transport: 'grpc', training: { ...TRAINING, bucketMb: 'off' } });
  const expected = once[0].sha256;
  for (const [label, ranks] of [
    ['one all-reduce', once],
    ['grpc buckets', grpcBuckets],
    ['shm buckets', shmBuckets],
  ] as const) {
    ranks.forEach((rank, r) => t.is(rank.sha256, expected, `${label}, rank ${r}: weights`));
  }
  for (const rank of once) t.true(rank.timings.every((step) => step.allReduceOverlappedMs === 0 && step.allReducesDuringCompute === 0));
  for (const [label, ranks] of [
    ['grpc', grpcBuckets],
    ['shm', shmBuckets],
  ] as const) {
    for (const rank of ranks) {
      t.is(rank.timings.length, 2);
      t.true(
        rank.tensors.every((count) => count === rank.tensors[0]),
        `${label}: tensors after each step ${rank.tensors.join(',')}`,
      );
      // Some all-reduce began while the gradient was still being computed (an order of events:
      // bucket 0's, started when the backward pass handed it out, before the walk went on), and
      // the hidden part of the all-reduce time is never more than all of it.
      t.true(
        rank.timings.every((step) => step.allReducesDuringCompute > 0 && step.allReduceOverlappedMs <= step.allReduceBusyMs),
        `${label}: ${JSON.stringify(rank.timings)}`,
      );
    }
  }
});
