/**
 * What a checkpoint records beside the weights: where training stands, so that a resumed run
 * continues with the same batches and reports the same per-epoch figures as one that never
 * stopped. The batch order is a function of (seed, epoch) alone, so (epoch, stepInEpoch) is
 * enough to find the next batch.
 */

/** The figures of one finished epoch, as the seed's program prints them. */
export interface EpochRecord {
  /** 1-based epoch number. */
  epoch: number;
  /** Mean training cross-entropy over the epoch's examples, computed before each update. */
  loss: number;
  trainAcc: number;
  testAcc: number;
  /** Mean cross-entropy over the test set (absent in records written before it was measured). */
  testLoss?: number;
  /** Training examples per second over the epoch's steps (evaluation excluded). */
  examplesPerSec: number;
  /** Seconds spent in the epoch's training steps on rank 0. */
  seconds: number;
}

/** Running sums over the steps of the epoch in progress. */
export interface EpochTotals {
  lossSum: number;
  correct: number;
  count: number;
  /** Seconds spent in training steps. */
  seconds: number;
}

export interface TrainingState {
  formatVersion: 1;
  /** 0-based index of the epoch in progress (equal to `epochs` when training is finished). */
  epoch: number;
  /** Steps of `epoch` already applied. */
  stepInEpoch: number;
  /** Steps applied since the start of the run. */
  globalStep: number;
  totals: EpochTotals;
  history: EpochRecord[];
}

export function emptyTotals(): EpochTotals {
  return { lossSum: 0, correct: 0, count: 0, seconds: 0 };
}

export function initialTrainingState(): TrainingState {
  return { formatVersion: 1, epoch: 0, stepInEpoch: 0, globalStep: 0, totals: emptyTotals(), history: [] };
}
