/**
 * Recycles the Float32Arrays that native kernels write their outputs into. A fresh large
 * typed array costs milliseconds (the allocator zeroes it and the kernel then page-faults it
 * in); a training step allocates the same sizes every time, so arrays released by disposed
 * tensors are handed out again. Contents of a recycled array are undefined.
 *
 * Memory is bounded by `maxPooledBytes`. When a release would exceed it, whole size classes
 * are dropped, least recently taken first (sizes from a finished phase, such as evaluation
 * batches, make room for the current ones); an array that still does not fit is left to the
 * garbage collector.
 */
export class Float32ArrayPool {
  private readonly free = new Map<number, Float32Array[]>();
  /** Per size: the value of `clock` when an array of that size was last taken. */
  private readonly lastTaken = new Map<number, number>();
  private clock = 0;
  private pooledBytes = 0;
  /** Bytes handed out as fresh allocations (pool misses) since construction. */
  freshBytes = 0;
  /** Bytes handed out from the pool since construction. */
  reusedBytes = 0;

  /**
   * @param maxPooledBytes upper bound on bytes kept for reuse. Default 1 GiB.
   */
  constructor(private readonly maxPooledBytes = 1 << 30) {}

  /** An array of exactly `length` elements, recycled when one is free. */
  take(length: number): Float32Array {
    this.clock += 1;
    this.lastTaken.set(length, this.clock);
    const array = this.free.get(length)?.pop();
    if (array === undefined) {
      this.freshBytes += length * 4;
      return new Float32Array(length);
    }
    this.pooledBytes -= array.byteLength;
    this.reusedBytes += array.byteLength;
    return array;
  }

  /** Gives `array` back; the caller must hold no other reference that is still used. */
  release(array: Float32Array): void {
    if (this.pooledBytes + array.byteLength > this.maxPooledBytes) this.evictStale(array.length, array.byteLength);
    if (this.pooledBytes + array.byteLength > this.maxPooledBytes) return;
    let list = this.free.get(array.length);
    if (list === undefined) {
      list = [];
      this.free.set(array.length, list);
    }
    list.push(array);
    this.pooledBytes += array.byteLength;
  }

  /** Bytes currently held for reuse. */
  get bytes(): number {
    return this.pooledBytes;
  }

  clear(): void {
    this.free.clear();
    this.lastTaken.clear();
    this.pooledBytes = 0;
  }

  /** Drops size classes other than `keep`, least recently taken first, until `needed` fits. */
  private evictStale(keep: number, needed: number): void {
    const classes = [...this.free.keys()].filter((length) => length !== keep);
    classes.sort((a, b) => (this.lastTaken.get(a) ?? 0) - (this.lastTaken.get(b) ?? 0));
    for (const length of classes) {
      if (this.pooledBytes + needed <= this.maxPooledBytes) return;
      for (const array of this.free.get(length) ?? []) this.pooledBytes -= array.byteLength;
      this.free.delete(length);
    }
  }
}
