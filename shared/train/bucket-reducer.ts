/**
 * The all-reduce side of gradient buckets: whoever computes the gradient (the tfjs backward
 * pass of gradient-step.ts, or any other source of finished ranges) calls `ready(k)` once
 * `buffer[buckets[k].lo, buckets[k].hi)` is final, and bucket k's all-reduce starts as soon as
 * the buckets before it are reduced: one all-reduce at a time, in bucket order, so every rank
 * makes the same collective calls in the same order. `finish` then reduces the rest of the
 * buffer (the step's extra slots) and waits for all. Each range is summed in the order one
 * all-reduce of the whole buffer gives it (Collective.sumRangeInPlace), so the result does not
 * depend on the buckets.
 */
import type { BufferRange, Collective, CollectiveTag } from './collective.ts';
import { checkGradient, worseCheck, type GradientCheck } from './finite-values.ts';

/** Where the all-reduce time of one step went, against the gradient computation (ms). */
export interface OverlapTimings {
  /** Sum of the durations of the step's all-reduces (call to result). */
  allReduceMs: number;
  /** The part of that which ran while the gradient was being computed: hidden behind it. */
  overlappedMs: number;
  /** All-reduces that began before the gradient computation ended (an order, not a duration). */
  startedDuringCompute: number;
}

export class BucketReducer {
  private readonly isReady: boolean[];
  private nextToStart = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly intervals: Array<[number, number]> = [];
  private startedDuringCompute = 0;
  private computingValue = true;
  private computeStart = performance.now();
  private computeEnd = Number.POSITIVE_INFINITY;
  /** The worst of the buckets handed out so far, each checked before its all-reduce (finite-values.ts). */
  localCheck: GradientCheck = 'bounded';

  constructor(
    private readonly collective: Collective,
    private readonly buffer: Float32Array,
    private readonly buckets: readonly BufferRange[],
    private readonly tag: CollectiveTag,
  ) {
    this.isReady = buckets.map(() => false);
  }

  /** Bucket k's values are final: check them, and start its all-reduce once those before it are done. */
  ready(k: number): void {
    const { lo, hi } = this.buckets[k];
    if (this.isReady[k]) throw new RangeError(`bucket ${k} was handed out twice`);
    this.isReady[k] = true;
    this.localCheck = worseCheck(this.localCheck, checkGradient(this.buffer.subarray(lo, hi)));
    while (this.nextToStart < this.buckets.length && this.isReady[this.nextToStart]) {
      const range = this.buckets[this.nextToStart++];
      this.chain = this.chain.then(() => this.reduce(range));
    }
    // Awaited by finish(); a step that throws before it must not leave an unhandled rejection.
    this.chain.catch(() => {});
  }

  /** The gradient computation is over: from now on a wait may block the thread. */
  computeDone(): void {
    if (!this.computingValue) return;
    this.computingValue = false;
    this.computeEnd = performance.now();
  }

  /** Marks where the gradient computation began (for the overlap measure); defaults to construction. */
  computeStarted(at: number): void {
    this.computeStart = at;
  }

  /** Reduces `rest` after every bucket (all must have been handed out) and waits for all. */
  async finish(rest: BufferRange): Promise<void> {
    if (this.nextToStart !== this.buckets.length) throw new RangeError(`only ${this.nextToStart} of ${this.buckets.length} buckets were handed out`);
    this.computeDone();
    await this.chain;
    if (rest.hi > rest.lo) await this.reduce(rest);
  }

  get timings(): OverlapTimings {
    let allReduceMs = 0;
    let overlappedMs = 0;
    for (const [start, end] of this.intervals) {
      allReduceMs += end - start;
      overlappedMs += Math.max(0, Math.min(end, this.computeEnd) - Math.max(start, this.computeStart));
    }
    return { allReduceMs, overlappedMs, startedDuringCompute: this.startedDuringCompute };
  }

  private async reduce(range: BufferRange): Promise<void> {
    if (this.computingValue) this.startedDuringCompute += 1;
    const started = performance.now();
    await this.collective.sumRangeInPlace(this.buffer, range, this.tag, () => this.computingValue);
    this.intervals.push([started, performance.now()]);
  }
}
