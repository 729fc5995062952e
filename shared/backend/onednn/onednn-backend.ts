/**
 * The `onednn` backend: TensorFlow.js's CPU backend (typed arrays in a DataStorage, every cpu
 * kernel usable unchanged) plus recycling of the arrays native kernels write into.
 *
 * Recycling is safe only for arrays no JavaScript code can still see. An array is recyclable
 * from the moment a native kernel takes it from the pool until anything else touches it:
 * reading a tensor (`dataSync`, `data`, `readSync`), or another kernel storing the same
 * buffer in a new tensor (the cpu Slice kernel returns `subarray` views, for instance) marks
 * its buffer as escaped and it is then left to the garbage collector.
 */
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { backend_util, DataId, DataType, TensorInfo } from '@tensorflow/tfjs-core';
import type { OnednnAddon } from './addon.ts';
import { Float32ArrayPool } from './buffer-pool.ts';

export class OnednnBackend extends MathBackendCPU {
  readonly addon: OnednnAddon;
  private readonly pool: Float32ArrayPool;
  /** Buffers of pooled arrays that only native kernels and the DataStorage reference. */
  private readonly recyclable = new WeakSet<ArrayBufferLike>();
  /** Tensors produced by native kernels so far (tests use it to tell native from fallback). */
  nativeOutputs = 0;

  /** @param maxPooledBytes bytes of released arrays kept for reuse (default 1 GiB). */
  constructor(addon: OnednnAddon, maxPooledBytes?: number) {
    super();
    this.addon = addon;
    this.pool = new Float32ArrayPool(maxPooledBytes);
    // The cpu backend's first write() prints an advert for tfjs-node; this is the native path.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** An output array for a native kernel; its contents are undefined until the kernel runs. */
  allocateFloat32(size: number): Float32Array {
    const array = this.pool.take(size);
    this.recyclable.add(array.buffer);
    return array;
  }

  /** Stores an array from {@link allocateFloat32} as a new tensor's data. */
  makeNativeOutput(values: Float32Array, shape: number[]): TensorInfo {
    const dataId = super.write(values, shape, 'float32');
    this.nativeOutputs += 1;
    return { dataId, shape, dtype: 'float32' };
  }

  /** Bytes held by the pool for reuse. */
  get pooledBytes(): number {
    return this.pool.bytes;
  }

  /** Output bytes native kernels got as fresh allocations and as recycled arrays, so far. */
  get allocationStats(): { freshBytes: number; reusedBytes: number } {
    return { freshBytes: this.pool.freshBytes, reusedBytes: this.pool.reusedBytes };
  }

  /**
   * The Float32Array behind `dataId` when nothing but this one tensor can see it (reference
   * count 1, filled by a native kernel, never read by JavaScript), so it may be updated in
   * place; otherwise null.
   */
  exclusiveFloat32(dataId: DataId): Float32Array | null {
    if (!this.data.has(dataId)) return null;
    const entry = this.data.get(dataId);
    const values = entry.values;
    if (entry.refCount !== 1 || !(values instanceof Float32Array) || !this.recyclable.has(values.buffer)) return null;
    return values;
  }

  /** Copies a tensor's data into `out` at `offset` without exposing the backend's array. */
  copyInto(dataId: DataId, out: Float32Array, offset: number): void {
    const values = this.data.get(dataId).values;
    if (values instanceof Float32Array) {
      out.set(values, offset);
    } else {
      out.set(this.readSync(dataId) as ArrayLike<number>, offset);
    }
  }

  override write(values: backend_util.BackendValues, shape: number[], dtype: DataType): DataId {
    this.escape(values);
    return super.write(values, shape, dtype);
  }

  override move(dataId: DataId, values: backend_util.BackendValues, shape: number[], dtype: DataType, refCount: number): void {
    this.escape(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override readSync(dataId: DataId): backend_util.BackendValues {
    if (this.data.has(dataId)) this.escape(this.data.get(dataId).values);
    return super.readSync(dataId);
  }

  override read(dataId: DataId): Promise<backend_util.BackendValues> {
    return Promise.resolve(this.readSync(dataId));
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const released = super.disposeData(dataId, force);
    if (released && values instanceof Float32Array && !this.data.has(dataId) && this.recyclable.has(values.buffer)) {
      this.recyclable.delete(values.buffer);
      this.pool.release(values);
    }
    return released;
  }

  /** Drops pooled arrays and the addon's cached plans and scratch buffers (rebuilt on demand). */
  releaseMemory(): void {
    this.pool.clear();
    this.addon.releaseCaches();
  }

  override dispose(): void {
    this.releaseMemory();
    super.dispose();
  }

  private escape(values: backend_util.BackendValues | undefined): void {
    if (values !== undefined && ArrayBuffer.isView(values)) this.recyclable.delete(values.buffer);
  }
}
