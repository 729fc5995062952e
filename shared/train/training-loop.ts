import { TRAINING_DEFAULTS, type CompiledTrainingOptions } from '../config/training-options.ts';
import { buildBatch, type Batch } from '../data/batch-builder.ts';
import type { ImageBatch } from './gradient-step.ts';
import { globalBatches, sliceForRank } from '../data/batch-order.ts';
import type { ImageSet } from '../data/fashion-mnist.ts';
import type { TrainableModel } from '../model/trainable-model.ts';
import { averageRunningStats, type Collective } from './collective.ts';
import { evaluateSlice } from './evaluate.ts';
import { BucketReducer } from './bucket-reducer.ts';
import { allFinite, flaggedRanks, worseCheck, type GradientCheck } from './finite-values.ts';
import { planBuckets, type GradientBucket } from './gradient-buckets.ts';
import { gradientSourceFor, type GradientSource } from './gradient-source.ts';
import { applySgd } from './sgd.ts';
import { emptyTotals, type EpochRecord, type TrainingState } from './training-state.ts';
import { NonFiniteGradientError } from '../errors.ts';

export interface TrainingData {
  train: ImageSet;
  test: ImageSet;
}

/** Milliseconds one step spent in each phase, on this rank. */
export interface StepTimings {
  dataMs: number;
  computeMs: number;
  /** From the end of the gradient computation until every all-reduce of the step was done: the exposed part. */
  allReduceMs: number;
  updateMs: number;
  /**
   * Sum of the durations of the step's gradient all-reduces, and the part of it that ran while
   * the gradient was computed (hidden; 0 without buckets): the fraction hidden is their ratio.
   */
  allReduceBusyMs: number;
  allReduceOverlappedMs: number;
  /** Gradient all-reduces that began before the gradient computation ended (0 without buckets). */
  allReducesDuringCompute: number;
}

export interface StepReport {
  /** 1-based epoch and step within it. */
  epoch: number;
  step: number;
  stepsPerEpoch: number;
  globalStep: number;
  /** Examples in this rank's slice of the global batch. */
  examples: number;
  /** Mean cross-entropy over the whole global batch (all ranks), before the update. */
  loss: number;
  /** Examples of the global batch processed per second, this step. */
  examplesPerSec: number;
  /**
   * True when the summed gradient held a NaN or an infinity and, under `nonfinite: 'skip'`, no
   * rank applied it (the weights are those of the step before).
   */
  skipped: boolean;
  timings: StepTimings;
}

/** Where the training loop reports to; none of these may call back into the loop. */
export interface TrainingHooks {
  onStep?(report: StepReport): void;
  onEpoch?(record: EpochRecord): void | Promise<void>;
  /** Called on rank 0 only, with running statistics averaged and figures summed over ranks. */
  saveCheckpoint?(state: TrainingState): Promise<void>;
  /** This rank's wish to stop; the ranks agree on it and stop after the same step. */
  stopRequested?(): boolean;
}

/**
 * Offsets, after the gradients, of the step buffer's extra slots; after them come worldSize
 * slots, one per rank, set to 1 by a rank whose own gradient is not all finite. The unbounded
 * slot counts the ranks whose gradient is not `bounded` (finite-values.ts): when it sums to 0,
 * the summed gradient is finite without a second pass over it.
 */
const STOP_SLOT = 0;
const LOSS_SLOT = 1;
const COUNT_SLOT = 2;
const UNBOUNDED_SLOT = 3;
const NONFINITE_SLOTS = 4;

export type TrainingOutcome = { kind: 'completed' | 'stopped'; state: TrainingState };

/** Contiguous share [start, end) of `count` items for `rank` of `worldSize` (earlier ranks take the extra). */
export function shareOf(count: number, rank: number, worldSize: number): { start: number; end: number } {
  const base = Math.floor(count / worldSize);
  const extra = count % worldSize;
  const start = rank * base + Math.min(rank, extra);
  return { start, end: start + base + (rank < extra ? 1 : 0) };
}

/**
 * Synchronous data-parallel SGD: for each global batch (the seeded order, whatever the world
 * size), this rank takes its contiguous slice, computes the gradient of its share of the
 * batch's mean loss, all ranks sum their gradients, and every rank applies the same update.
 * With a world of one this is plain single-process training, through the very same code.
 */
export class TrainingLoop {
  private readonly stepBuffer: Float32Array;
  private readonly parameterCount: number;
  private readonly gradients: GradientSource;
  private readonly batchBuffer: Batch;
  /** Gradient buckets, in the order their all-reduces start; none with `bucketMb` 0 or a world of one. */
  private readonly buckets: GradientBucket[];
  /** Leading values of the step buffer that the all-reduce sums in binary16 (0: none). */
  private readonly compressedValues: number;

  constructor(
    private readonly model: TrainableModel,
    private readonly data: TrainingData,
    private readonly options: CompiledTrainingOptions,
    private readonly collective: Collective,
    private readonly hooks: TrainingHooks = {},
  ) {
    this.parameterCount = model.params.trainableCount;
    // Extra slots ride along with the gradients in the same all-reduce: the ranks' stop votes,
    // the batch's loss sum and example count (for the global batch's loss), the count of ranks
    // whose gradient is not bounded, and one flag per rank whose gradient is not finite (so
    // every rank can name them).
    this.stepBuffer = new Float32Array(this.parameterCount + NONFINITE_SLOTS + collective.worldSize);
    this.gradients = gradientSourceFor(model, options);
    // A config stored before buckets existed has no `bucketMb`: the default, which gives the same bits.
    const bucketMb = collective.worldSize > 1 ? (options.bucketMb ?? TRAINING_DEFAULTS.bucketMb) : 0;
    this.buckets = planBuckets(
      model.params.trainable.map((p) => p.variable.size),
      bucketMb,
    );
    // Only the gradient is compressed: the slots after it must stay exact (a loss sum or an
    // example count rounded to binary16 would be wrong, a vote or flag could not be told apart).
    // A config stored before the option existed has no `gradCompression`: none.
    this.compressedValues = options.gradCompression === 'fp16' ? this.parameterCount : 0;
    // One buffer for every step's slice (at most ceil(batch / N) images): a fresh 9 MB array
    // per step cost more than resizing the images into it (page faults and zeroing).
    const slice = Math.ceil(options.batchSize / collective.worldSize);
    this.batchBuffer = { x: new Float32Array(slice * options.resize * options.resize), labels: new Int32Array(slice) };
  }

  get stepsPerEpoch(): number {
    return Math.ceil(this.data.train.count / this.options.batchSize);
  }

  /** Trains from `state` until the last epoch or an agreed stop; `state` is updated in place. */
  async run(state: TrainingState): Promise<TrainingOutcome> {
    if (this.collective.rank !== 0) state.totals = emptyTotals();
    while (state.epoch < this.options.epochs) {
      const batches = globalBatches(this.options.seed, state.epoch, this.data.train.count, this.options.batchSize);
      while (state.stepInEpoch < batches.length) {
        const stop = await this.step(state, batches[state.stepInEpoch], batches.length);
        const endOfEpoch = state.stepInEpoch === batches.length;
        const due = this.options.checkpointEvery > 0 && state.globalStep % this.options.checkpointEvery === 0;
        if ((stop || due) && !endOfEpoch) await this.checkpoint(state);
        if (stop && !endOfEpoch) return { kind: 'stopped', state };
        if (stop) {
          await this.finishEpoch(state);
          return { kind: state.epoch < this.options.epochs ? 'stopped' : 'completed', state };
        }
      }
      await this.finishEpoch(state);
    }
    return { kind: 'completed', state };
  }

  /** One optimiser step; returns whether any rank voted to stop. */
  private async step(state: TrainingState, globalBatch: Uint32Array, stepsPerEpoch: number): Promise<boolean> {
    const n = this.parameterCount;
    const started = performance.now();
    const mine = sliceForRank(globalBatch, this.collective.rank, this.collective.worldSize);
    const batch = mine.length > 0 ? buildBatch(this.data.train, mine, this.options.resize, this.batchBuffer) : undefined;
    const dataDone = performance.now();
    const tag = { step: state.globalStep, purpose: 'gradients', float16Values: this.compressedValues };
    const reducer = this.buckets.length > 0 ? new BucketReducer(this.collective, this.stepBuffer, this.buckets, tag) : undefined;
    reducer?.computeStarted(dataDone);
    const image = batch ? { ...batch, count: mine.length, size: this.options.resize } : undefined;
    const { lossSum, correct, check } = await this.gradientsOf(image, globalBatch.length, reducer);
    this.stepBuffer[n + STOP_SLOT] = this.hooks.stopRequested?.() ? 1 : 0;
    this.stepBuffer[n + LOSS_SLOT] = lossSum;
    this.stepBuffer[n + COUNT_SLOT] = mine.length;
    this.stepBuffer[n + UNBOUNDED_SLOT] = check === 'bounded' ? 0 : 1;
    this.stepBuffer.fill(0, n + NONFINITE_SLOTS);
    if (check === 'nonfinite') this.stepBuffer[n + NONFINITE_SLOTS + this.collective.rank] = 1;
    const computeDone = performance.now();
    if (reducer) await reducer.finish({ lo: n, hi: this.stepBuffer.length });
    else await this.collective.sumInPlace(this.stepBuffer, tag);
    const reduceDone = performance.now();
    const overlap = reducer?.timings ?? { allReduceMs: reduceDone - computeDone, overlappedMs: 0, startedDuringCompute: 0 };
    // Decided on the summed buffer, identical on every rank, so all ranks apply or skip alike.
    const skipped = !this.checkSummedGradient(state.globalStep + 1);
    if (!skipped) applySgd(this.model, this.stepBuffer.subarray(0, n), this.options.lr);
    const finished = performance.now();

    const seconds = (finished - started) / 1000;
    // A skipped step trained nothing: its (non-finite) loss stays out of the epoch's figures.
    if (!skipped) {
      state.totals.lossSum += lossSum;
      state.totals.correct += correct;
      state.totals.count += mine.length;
    }
    state.totals.seconds += seconds;
    state.stepInEpoch += 1;
    state.globalStep += 1;
    this.hooks.onStep?.({
      epoch: state.epoch + 1,
      step: state.stepInEpoch,
      stepsPerEpoch,
      globalStep: state.globalStep,
      examples: mine.length,
      loss: this.stepBuffer[n + LOSS_SLOT] / this.stepBuffer[n + COUNT_SLOT],
      examplesPerSec: globalBatch.length / seconds,
      skipped,
      timings: {
        dataMs: dataDone - started,
        computeMs: computeDone - dataDone,
        allReduceMs: reduceDone - computeDone,
        updateMs: finished - reduceDone,
        allReduceBusyMs: overlap.allReduceMs,
        allReduceOverlappedMs: overlap.overlappedMs,
        allReducesDuringCompute: overlap.startedDuringCompute,
      },
    });
    return this.stepBuffer[n + STOP_SLOT] > 0;
  }

  /**
   * This rank's gradient into the step buffer (zeros for an empty slice) and what it is. With
   * buckets, each is handed to `reducer` as the backward pass finishes it (so its all-reduce runs
   * meanwhile, and the sum may overwrite it before the backward ends): the reducer checks each
   * bucket before its all-reduce, and its verdict is the gradient's.
   */
  private async gradientsOf(
    batch: ImageBatch | undefined,
    globalCount: number,
    reducer: BucketReducer | undefined,
  ): Promise<{ lossSum: number; correct: number; check: GradientCheck }> {
    const out = this.stepBuffer.subarray(0, this.parameterCount);
    try {
      if (!batch) {
        out.fill(0);
        this.buckets.forEach((_, k) => reducer!.ready(k));
        return { lossSum: 0, correct: 0, check: 'bounded' };
      }
      const release = reducer ? { buckets: this.buckets, ready: (k: number) => reducer.ready(k) } : undefined;
      const figures = await this.gradients.compute(batch, { lossDenominator: globalCount, out }, release);
      return reducer ? { ...figures, check: worseCheck(figures.check, reducer.localCheck) } : figures;
    } finally {
      reducer?.computeDone();
    }
  }

  /**
   * Whether the summed gradient of step `globalStep` (1-based) is all finite. When it is not,
   * `nonfinite: 'fail'` throws GRADIENT_NONFINITE naming the ranks that flagged their own
   * gradient, and `'skip'` returns false.
   */
  private checkSummedGradient(globalStep: number): boolean {
    const n = this.parameterCount;
    // Bounded gradients on every rank cannot sum to an infinity: no pass over the sum needed.
    if (this.stepBuffer[n + UNBOUNDED_SLOT] === 0 || allFinite(this.stepBuffer.subarray(0, n))) return true;
    // A config stored before the option existed has no `nonfinite`: it fails, the default.
    if (this.options.nonfinite === 'skip') return false;
    throw new NonFiniteGradientError(globalStep, flaggedRanks(this.stepBuffer.subarray(n + NONFINITE_SLOTS)));
  }

  /** Sums the epoch's figures over ranks, evaluates on the test set, records and checkpoints. */
  private async finishEpoch(state: TrainingState): Promise<void> {
    const { rank, worldSize } = this.collective;
    const tag = { step: state.globalStep, purpose: 'epoch-figures' };
    const [lossSum, correct, count] = await this.collective.sumFigures([state.totals.lossSum, state.totals.correct, state.totals.count], tag);
    await averageRunningStats(this.model, this.collective, state.globalStep);
    const { start, end } = shareOf(this.data.test.count, rank, worldSize);
    const evalBatch = this.options.microBatch ?? this.options.batchSize;
    const local = evaluateSlice(this.model, this.data.test, this.options.resize, evalBatch, start, end);
    const [testCorrect, testLossSum] = await this.collective.sumFigures([local.correct, local.lossSum], { ...tag, purpose: 'test-figures' });
    const record: EpochRecord = {
      epoch: state.epoch + 1,
      loss: lossSum / count,
      trainAcc: correct / count,
      testAcc: testCorrect / this.data.test.count,
      testLoss: testLossSum / this.data.test.count,
      examplesPerSec: count / state.totals.seconds,
      seconds: state.totals.seconds,
    };
    state.history.push(record);
    state.epoch += 1;
    state.stepInEpoch = 0;
    state.totals = emptyTotals();
    await this.hooks.onEpoch?.(record);
    if (rank === 0) await this.hooks.saveCheckpoint?.(structuredClone(state));
  }

  /** A mid-epoch checkpoint: statistics averaged and figures so far summed over ranks. */
  private async checkpoint(state: TrainingState): Promise<void> {
    await averageRunningStats(this.model, this.collective, state.globalStep);
    const tag = { step: state.globalStep, purpose: 'checkpoint-figures' };
    const [lossSum, correct, count] = await this.collective.sumFigures([state.totals.lossSum, state.totals.correct, state.totals.count], tag);
    if (this.collective.rank !== 0) return;
    const snapshot = structuredClone(state);
    snapshot.totals = { lossSum: lossSum, correct: correct, count: count, seconds: state.totals.seconds };
    await this.hooks.saveCheckpoint?.(snapshot);
  }
}
