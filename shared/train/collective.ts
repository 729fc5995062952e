import { assignValues, flattenValues } from '../model/parameter-set.ts';
import type { TrainableModel } from '../model/trainable-model.ts';

/**
 * How a training process combines its work with its peers. Every call is collective: all ranks
 * make it in the same order with the same arguments' shapes. A single process is a world of one
 * ({@link SoloCollective}); workers of a cluster use the gRPC ring.
 */
export interface Collective {
  readonly rank: number;
  readonly worldSize: number;
  /** Replaces `buffer` on every rank by the element-wise sum over ranks, bit-identical everywhere. */
  sumInPlace(buffer: Float32Array, tag: CollectiveTag): Promise<void>;
  /**
   * Replaces `buffer[range.lo, range.hi)` by its sum over ranks, each value summed in the order
   * `sumInPlace(buffer)` would sum it: reducing a buffer range by range (gradient buckets) gives
   * the bits of one call over the whole. `computing` says while the caller still computes
   * between yields (see AllReduceTag.computing).
   */
  sumRangeInPlace(buffer: Float32Array, range: BufferRange, tag: CollectiveTag, computing?: () => boolean): Promise<void>;
  /** Element-wise float64 sums of small vectors of figures (loss sums, counts) over ranks. */
  sumFigures(values: number[], tag: CollectiveTag): Promise<number[]>;
}

/** Identifies one collective call; all ranks pass the same tag for the same call. */
export interface CollectiveTag {
  /** Optimiser steps applied before this call, since the run started. */
  step: number;
  /** What is being combined, e.g. 'gradients', 'bn-stats', 'epoch-figures'. */
  purpose: string;
  /**
   * Values at the start of the buffer summed in binary16 (`--grad-compression fp16`; see the
   * ring's AllReduceTag.float16Values), the rest in float32. A world of one sends nothing and
   * leaves them as they are. @default 0
   */
  float16Values?: number;
}

/** Values [lo, hi) of a buffer (float32 elements). */
export interface BufferRange {
  lo: number;
  hi: number;
}

/** The collective of a single process: sums over one rank change nothing. */
export class SoloCollective implements Collective {
  readonly rank = 0;
  readonly worldSize = 1;

  async sumInPlace(): Promise<void> {}

  async sumRangeInPlace(): Promise<void> {}

  sumFigures(values: number[]): Promise<number[]> {
    return Promise.resolve(values);
  }
}

/**
 * Replaces every rank's batch norm running statistics by their mean over ranks, before
 * evaluation and checkpoints (as DDP users do without SyncBatchNorm: each worker's statistics
 * come from its own slice of the batch during training).
 */
export async function averageRunningStats(model: TrainableModel, collective: Collective, step: number): Promise<void> {
  if (collective.worldSize === 1) return;
  const buffer = flattenValues(model.params.runningStats);
  await collective.sumInPlace(buffer, { step, purpose: 'bn-stats' });
  for (let i = 0; i < buffer.length; i += 1) buffer[i] = buffer[i] / collective.worldSize;
  assignValues(model.params.runningStats, buffer);
}
