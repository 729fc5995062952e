import type { BufferRange, Collective, CollectiveTag } from '../shared/train/collective.ts';
import type { AllReduceTag, AllReduceTimings } from './collective/ring-allreduce.ts';

/** What sums: the gRPC ring's RingMember, or a host's ShmAllReduce. */
export interface SumAllReduce {
  allReduceSum(data: Float32Array, tag: AllReduceTag): Promise<AllReduceTimings>;
}

/**
 * The training loop's collective over the gRPC ring. Each call gets the next sequence number
 * as its ring step, so consecutive calls (gradients, then batch norm statistics, then figures)
 * can never be confused, and every rank numbers them alike because it makes the same calls.
 */
export class RingCollective implements Collective {
  private sequence = 0;

  constructor(
    private readonly ring: SumAllReduce,
    readonly rank: number,
    readonly worldSize: number,
    private readonly run: { runId: string; generation: number },
    /** Told where the time and bytes of each all-reduce went on this rank (for metrics). */
    private readonly onAllReduce?: (purpose: string, timings: AllReduceTimings) => void,
  ) {}

  async sumInPlace(buffer: Float32Array, tag: CollectiveTag): Promise<void> {
    this.sequence += 1;
    const timings = await this.ring.allReduceSum(buffer, { ...this.run, step: this.sequence, float16Values: tag.float16Values ?? 0 });
    this.onAllReduce?.(tag.purpose, timings);
  }

  async sumRangeInPlace(buffer: Float32Array, range: BufferRange, tag: CollectiveTag, computing?: () => boolean): Promise<void> {
    this.sequence += 1;
    const window = { offset: range.lo, total: buffer.length };
    // tag.float16Values counts from the buffer's start: the part of them inside this range.
    const float16Values = Math.min(Math.max((tag.float16Values ?? 0) - range.lo, 0), range.hi - range.lo);
    const timings = await this.ring.allReduceSum(buffer.subarray(range.lo, range.hi), { ...this.run, step: this.sequence, window, computing, float16Values });
    this.onAllReduce?.(tag.purpose, timings);
  }

  /**
   * Float64 sums carried by the float32 ring: each value travels as a high part (its float32
   * rounding) and a low part (the remainder), so sums of counts and losses keep ~48 bits.
   */
  async sumFigures(values: number[], tag: CollectiveTag): Promise<number[]> {
    const buffer = new Float32Array(values.length * 2);
    values.forEach((value, i) => {
      buffer[2 * i] = value;
      buffer[2 * i + 1] = value - buffer[2 * i];
    });
    await this.sumInPlace(buffer, tag);
    return values.map((_, i) => buffer[2 * i] + buffer[2 * i + 1]);
  }
}
