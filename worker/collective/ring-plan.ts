/**
 * The arithmetic of a ring all-reduce, with no I/O: which segment a rank sends and receives at
 * each ring step, and how a segment is cut into chunks.
 *
 * The vector of L values is cut into N segments (segment k = [floor(kL/N), floor((k+1)L/N))).
 * The 2(N-1) ring steps are numbered g = 0 .. 2N-3: g < N-1 is reduce-scatter step g,
 * the rest all-gather step g-(N-1). At step g rank r sends segment (r-g) mod N to its right
 * neighbour and receives segment (r-1-g) mod N from its left one, in both phases. So what a rank
 * sends at step g+1 is exactly what it received at step g, chunk by chunk: a chunk can go on
 * as soon as it has arrived, which is what pipelines the ring.
 *
 * Segment k is summed in a fixed order, starting at rank k and going round the ring
 * ((x_k + x_k+1) + x_k+2 ...), and the all-gather copies the finished values: the result is the
 * same on every rank and from run to run.
 *
 * A bucket of a longer vector (gradient buckets, reduced while the backward pass runs) keeps the
 * order the whole vector would give its values: with a window { offset, total } the segments are
 * those of the whole vector of `total` values, cut to the bucket [offset, offset + L), so each
 * value is summed starting at the same rank whether it is reduced in a bucket or all at once.
 */

/** Which half of the all-reduce a ring step belongs to; names match the proto enum. */
export type RingPhase = 'PHASE_REDUCE_SCATTER' | 'PHASE_ALL_GATHER';

/** One chunk on the wire: where its values sit in the whole vector. */
export interface ChunkRange {
  /** First value, in float32 elements from the start of the vector. */
  offset: number;
  /** Number of float32 values; 0 only for the one chunk of an empty segment. */
  length: number;
}

/** Where an all-reduced vector lies in a longer one whose segment split it keeps. */
export interface RingWindow {
  /** First value of the vector within the longer one (elements). */
  offset: number;
  /** Values in the longer vector; offset + length <= total. */
  total: number;
}

/** The fixed shape of one all-reduce for one rank. */
export class RingPlan {
  /** Ring steps over both phases: 2(N-1). */
  readonly steps: number;
  private readonly chunkCounts: Uint32Array;

  /**
   * @param length values in the vector (L)
   * @param worldSize ranks (N)
   * @param rank this rank (r)
   * @param chunkElements most values in one chunk
   * @param window where the vector lies in a longer one whose split it keeps; default: it is the whole
   */
  constructor(
    readonly length: number,
    readonly worldSize: number,
    readonly rank: number,
    readonly chunkElements: number,
    private readonly window: RingWindow = { offset: 0, total: length },
  ) {
    this.steps = 2 * (worldSize - 1);
    this.chunkCounts = new Uint32Array(worldSize);
    // An empty segment (L < N) still travels as one empty chunk, so every ring step, and so every
    // stream, has a chunk: a stream is recognised by its first chunk.
    for (let k = 0; k < worldSize; k += 1) this.chunkCounts[k] = Math.max(1, Math.ceil(this.segmentLength(k) / chunkElements));
  }

  /** First value of segment k (elements): the whole vector's segment k, cut to the window. */
  segmentStart(k: number): number {
    return segmentStartIn(k, this.length, this.worldSize, this.window);
  }

  /** Values in segment k (may be 0 when L < N). */
  segmentLength(k: number): number {
    return this.segmentStart(k + 1) - this.segmentStart(k);
  }

  /** Segment this rank sends at ring step g. */
  sendSegment(g: number): number {
    return mod(this.rank - g, this.worldSize);
  }

  /** Segment this rank receives at ring step g. */
  receiveSegment(g: number): number {
    return mod(this.rank - 1 - g, this.worldSize);
  }

  /** Chunks in segment k, >= 1. */
  chunkCount(k: number): number {
    return this.chunkCounts[k];
  }

  /** Chunk j of segment k. */
  chunk(k: number, j: number): ChunkRange {
    const start = this.segmentStart(k) + j * this.chunkElements;
    return { offset: start, length: Math.min(this.chunkElements, this.segmentStart(k + 1) - start) };
  }

  /** Chunks this rank sends in the whole all-reduce. */
  chunksToSend(): number {
    return this.sumOverSteps((g) => this.chunkCount(this.sendSegment(g)));
  }

  /** Chunks this rank receives in the whole all-reduce. */
  chunksToReceive(): number {
    return this.sumOverSteps((g) => this.chunkCount(this.receiveSegment(g)));
  }

  /** Reduce-scatter or all-gather, for ring step g. */
  phaseOf(g: number): RingPhase {
    return g < this.worldSize - 1 ? 'PHASE_REDUCE_SCATTER' : 'PHASE_ALL_GATHER';
  }

  /** Step within its phase (the proto's `ring_step`), for ring step g. */
  ringStepOf(g: number): number {
    return g < this.worldSize - 1 ? g : g - (this.worldSize - 1);
  }

  /** Ring step g of a (phase, ring_step) pair from the wire, or -1 if there is none. */
  globalStep(phase: string, ringStep: number): number {
    if (!Number.isInteger(ringStep) || ringStep < 0 || ringStep >= this.worldSize - 1) return -1;
    if (phase === 'PHASE_REDUCE_SCATTER') return ringStep;
    if (phase === 'PHASE_ALL_GATHER') return ringStep + this.worldSize - 1;
    return -1;
  }

  private sumOverSteps(count: (g: number) => number): number {
    let total = 0;
    for (let g = 0; g < this.steps; g += 1) total += count(g);
    return total;
  }
}

/**
 * First value of segment k of a vector of `length` values at `window` in a longer one: the longer
 * vector's split ([floor(k T / N), ...)), cut to [offset, offset + length) and made relative to it.
 */
export function segmentStartIn(k: number, length: number, worldSize: number, window: RingWindow = { offset: 0, total: length }): number {
  const whole = Math.floor((k * window.total) / worldSize) - window.offset;
  return Math.min(Math.max(whole, 0), length);
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
