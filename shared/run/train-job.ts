/**
 * The BullMQ work of a run. A run of N workers in generation G is N jobs `rank-slot` in the
 * `train` queue, ids `<run>.g<G>.s<slot>`: each job is one worker's whole share of that
 * generation, and its slot is the worker's rank in the ring (the rendezvous joins with that
 * rank and hands back the peers' addresses). A job is not retried by BullMQ (attempts 1): a
 * lone retried rank could not rejoin a ring whose peers moved on; instead the run becomes
 * failed or interrupted and `coordinator resume` enqueues a new generation that continues
 * from the newest checkpoint.
 */
export const TRAIN_QUEUE = 'train';
export const TRAIN_JOB_NAME = 'rank-slot';

/** Dataset versions (as stored by the shard store) of the training and test images. */
export interface DatasetVersions {
  train: string;
  test: string;
}

export interface TrainJobData {
  runId: string;
  generation: number;
  /** 0..worldSize-1: the job's place in the generation and the worker's rank in the ring. */
  slot: number;
  worldSize: number;
  dataset: DatasetVersions;
}

/** What a finished job returns to BullMQ. */
export interface TrainJobResult {
  rank: number;
  outcome: 'completed' | 'stopped' | 'stale';
  globalStep: number;
}

export function trainJobId(runId: string, generation: number, slot: number): string {
  return `${runId}.g${generation}.s${slot}`;
}

/**
 * BullMQ lock: the worker renews it from a timer, which cannot fire while a synchronous training
 * step runs, so it must outlast the slowest step (a 96x96 batch of 256 on the pure-JS backend
 * takes minutes).
 */
export const TRAIN_JOB_LOCK_MS = 15 * 60_000;
