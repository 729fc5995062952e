import { Tile, util, type KernelConfig, type KernelFunc, type TensorInfo, type TileAttrs, type TileInputs } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapByteOffset, heapBytes, stockWasmKernel } from './wasm-kernel-call.ts';

const stockTile = stockWasmKernel(Tile);

/** Below this many bytes a byte loop beats the per-call cost of copyWithin. */
const SMALL_COPY_BYTES = 64;

/** Repeats the `length` bytes at `start` `times` times in place, doubling the copied span. */
function repeatInPlace(heap: Uint8Array, start: number, length: number, times: number): void {
  const total = length * times;
  if (total <= SMALL_COPY_BYTES) {
    for (let i = length; i < total; i++) heap[start + i] = heap[start + i - length];
    return;
  }
  for (let filled = length; filled < total; filled += Math.min(filled, total - filled)) {
    heap.copyWithin(start + filled, start, start + Math.min(filled, total - filled));
  }
}

/**
 * Tile as block copies on the wasm heap. The stock kernel computes every output element's
 * source index; batch norm's gradient tiles a [1, 1, 1, C] vector to the activation's full
 * size and that took half a second per call at the stem (96x96, batch 32).
 *
 * Axis by axis from the innermost: once the axes after d are expanded, each index over axes
 * 0..d owns one contiguous block; the blocks of one index over axes 0..d-1 (a group) are
 * moved to their final place, last group first so nothing unread is overwritten, and then
 * repeated reps[d] times.
 */
function tile(args: { inputs: TileInputs; backend: BackendWasm; attrs: TileAttrs }): TensorInfo {
  const { backend } = args;
  const x = args.inputs.x as TensorInfo;
  if (x.dtype === 'string') return stockTile.kernelFunc(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
  const reps = args.attrs.reps;
  const outShape = x.shape.map((size, axis) => size * reps[axis]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (util.sizeFromShape(outShape) === 0) return out;

  const heap = heapBytes(backend);
  const base = heapByteOffset(backend, out);
  const xStart = heapByteOffset(backend, x);
  heap.copyWithin(base, xStart, xStart + util.sizeFromShape(x.shape) * util.bytesPerElement(x.dtype));
  let block = util.bytesPerElement(x.dtype);
  for (let axis = x.shape.length - 1; axis >= 0; axis--) {
    const size = x.shape[axis];
    const times = reps[axis];
    if (times > 1) {
      const groups = util.sizeFromShape(x.shape.slice(0, axis));
      const groupBytes = size * block;
      for (let g = groups - 1; g >= 0; g--) {
        const to = base + g * groupBytes * times;
        if (g > 0) heap.copyWithin(to, base + g * groupBytes, base + (g + 1) * groupBytes);
        repeatInPlace(heap, to, groupBytes, times);
      }
    }
    block *= size * times;
  }
  return out;
}

/** Registration record for `registerKernel`; replaces the stock wasm kernel. */
export const tileConfig: KernelConfig = {
  kernelName: Tile,
  backendName: 'wasm',
  kernelFunc: tile as unknown as KernelFunc,
  setupFunc: stockTile.setupFunc,
};
