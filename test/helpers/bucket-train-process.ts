/**
 * One rank of a short data-parallel training run alone in a process (a real TrainingLoop over a
 * real RingCollective on the gRPC ring or shared memory), for test/gradient-overlap.test.ts and
 * bench/overlap.ts. Started with the options as JSON in argv[2]; for the gRPC ring it tells the
 * parent its address and waits for every rank's, then trains and answers with the digest of its
 * final weights and every step's timings, and exits.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../shared/backend/select-backend.ts';
import type { ConcreteBackend } from '../../shared/config/compute-options.ts';
import { compileTrainingOptions, type TrainingOptions } from '../../shared/config/training-options.ts';
import { limitImageSet, loadFashionMnist } from '../../shared/data/fashion-mnist.ts';
import { flattenValues } from '../../shared/model/parameter-set.ts';
import type { ModelKind } from '../../shared/model/trainable-model.ts';
import { createSeededModel } from '../../shared/train/seeded-model.ts';
import { TrainingLoop, type StepTimings } from '../../shared/train/training-loop.ts';
import { initialTrainingState } from '../../shared/train/training-state.ts';
import { ShmAllReduce } from '../../worker/collective/shm-allreduce.ts';
import { RingMember } from '../../worker/collective/ring-allreduce.ts';
import { RingCollective, type SumAllReduce } from '../../worker/ring-collective.ts';
import { digestValues } from './ring-member-process.ts';
import { TEST_TOKEN } from './ring.ts';

export interface BucketTrainOptions {
  rank: number;
  worldSize: number;
  transport: 'grpc' | 'shm';
  /** Shared-memory name, for transport 'shm'. */
  shmName?: string;
  backend: ConcreteBackend;
  /** Compute threads (onednn). @default the backend's own */
  threads?: number;
  model: ModelKind;
  /** Training options of the run (bucketMb included); limitTrain bounds the steps. */
  training: TrainingOptions;
}

/** Child to parent. */
export type BucketTrainReply =
  | { type: 'address'; address: string }
  /** `tensors`: tf.memory().numTensors after each step. */
  | { type: 'trained'; sha256: string; timings: StepTimings[]; tensors: number[] };

/** Parent to child (gRPC ring only): every rank's address, index = rank. */
export interface BucketTrainPeers {
  peers: string[];
}

const options = JSON.parse(process.argv[2]) as BucketTrainOptions;
await selectBackend(options.backend, { threads: options.threads });
const dataset = await loadFashionMnist();
const training = compileTrainingOptions({ ...options.training, model: options.model });
const data = { train: limitImageSet(dataset.train, training.limitTrain!), test: limitImageSet(dataset.test, training.limitTest ?? 16) };
const model = createSeededModel(options.model, training.seed);
const { sum, close } = await joinTransport();
const timings: StepTimings[] = [];
const tensors: number[] = [];
const collective = new RingCollective(sum, options.rank, options.worldSize, { runId: 'bucket-train', generation: 0 });
// A first all-reduce as a barrier: a rank whose neighbour is still connecting must not start a
// step, whose synchronous compute would leave that neighbour's Ping unanswered.
await collective.sumFigures([0], { step: 0, purpose: 'barrier' });
await new TrainingLoop(model, data, training, collective, {
  onStep: (report) => {
    timings.push(report.timings);
    tensors.push(tf.memory().numTensors);
  },
}).run(initialTrainingState());
process.send!({ type: 'trained', sha256: digestValues(flattenValues(model.params.trainable)), timings, tensors } satisfies BucketTrainReply);
await close();
process.disconnect();

async function joinTransport(): Promise<{ sum: SumAllReduce; close: () => Promise<void> }> {
  const { rank, worldSize } = options;
  if (options.transport === 'shm') {
    const group = await ShmAllReduce.join({ name: options.shmName!, rank, worldSize, capacity: 12_000_000 });
    return { sum: { allReduceSum: (values, tag) => group.allReduceSum(values, tag) }, close: () => group.close() };
  }
  const member = await RingMember.start({ rank, worldSize, authToken: TEST_TOKEN });
  const peers = new Promise<string[]>((resolve) => process.once('message', (message: BucketTrainPeers) => resolve(message.peers)));
  process.send!({ type: 'address', address: member.address } satisfies BucketTrainReply);
  await member.connect(await peers);
  return { sum: member, close: () => member.close() };
}
