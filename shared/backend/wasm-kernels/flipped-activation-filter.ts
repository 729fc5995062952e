import { Transpose, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapFloatIndex, heapFloats, runWasmKernel } from './wasm-kernel-call.ts';

/**
 * An NHWC activation [n, h, w, c] as a conv filter [h, w, c, n] flipped in both spatial axes,
 * for the swapped-roles convs (the activation plays the weights, the weights the image).
 */
export function activationAsFlippedFilter(backend: BackendWasm, t: TensorInfo): TensorInfo {
  const [batch, height, width, channels] = t.shape as [number, number, number, number];
  const byPixel = runWasmKernel(backend, Transpose, { x: t }, { perm: [1, 2, 3, 0] });
  const block = channels * batch;
  const flipped = backend.makeOutput(byPixel.shape.slice(), 'float32');
  const heap = heapFloats(backend);
  const from = heapFloatIndex(backend, byPixel);
  const to = heapFloatIndex(backend, flipped);
  const pixels = height * width;
  // Flipping both axes reverses the row-major pixel order.
  for (let p = 0; p < pixels; p++) {
    const source = from + (pixels - 1 - p) * block;
    heap.copyWithin(to + p * block, source, source + block);
  }
  backend.disposeData(byPixel.dataId);
  return flipped;
}
