/**
 * Recycles the Float32Arrays that native kernels write their outputs into. A fresh large
 * typed array costs milliseconds (the allocator zeroes it and the kernel then page-faults it
 * in); a training step allocates the same sizes every time, so arrays released by disposed
 * tensors are handed out again. Contents of a recycled array are undefined.
 */
export class Float32ArrayPool {
  private readonly free = new Map<number, Float32Array[]>();
  private pooledBytes = 0;
  /** Bytes handed out as fresh allocations (pool misses) since construction. */
  freshBytes = 0;
  /** Bytes handed out from the pool since construction. */
  reusedBytes = 0;

  /**
   * @param maxPooledBytes upper bound on bytes kept for reuse; arrays released beyond it are
   *   left to the garbage collector. Default 1 GiB.
   */
  constructor(private readonly maxPooledBytes = 1 << 30) {}

  /** An array of exactly `length` elements, recycled when one is free. */
  take(length: number): Float32Array {
    const list = this.free.get(length);
    const array = list?.pop();
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
    this.pooledBytes = 0;
  }
}
