import { BatchMatMul, Reshape, Transpose, backend_util, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { disposeAll, heapFloatIndex, heapFloats, runWasmKernel } from './wasm-kernel-call.ts';

/**
 * Fills rows[(kw, ci), (oh, ow, n)] = x[n, s*oh + kh - pt, s*ow + kw - pl, ci] (zero where that
 * is padding) for one filter row kh, from x laid out as [ci, h, w, n]: for stride 1 each
 * (kw, ci, oh) is one contiguous run of dy's width times the batch.
 */
function fillTapRows(heap: Float32Array, xT: number, rows: number, kh: number, info: backend_util.Conv2DInfo): void {
  const { batchSize: n, inHeight, inWidth, inChannels, outHeight, outWidth, filterWidth, strideHeight, strideWidth, padInfo } = info;
  const run = outWidth * n;
  const depth = outHeight * run;
  for (let kw = 0; kw < filterWidth; kw++) {
    // Output columns whose input column is inside the image.
    const owFrom = Math.max(0, Math.ceil((padInfo.left - kw) / strideWidth));
    const owTo = Math.min(outWidth, Math.floor((inWidth - 1 + padInfo.left - kw) / strideWidth) + 1);
    for (let ci = 0; ci < inChannels; ci++) {
      for (let oh = 0, to = rows + (kw * inChannels + ci) * depth; oh < outHeight; oh++, to += run) {
        const ih = strideHeight * oh + kh - padInfo.top;
        if (ih < 0 || ih >= inHeight || owFrom >= owTo) {
          heap.fill(0, to, to + run);
          continue;
        }
        heap.fill(0, to, to + owFrom * n);
        heap.fill(0, to + owTo * n, to + run);
        const rowStart = xT + (ci * inHeight + ih) * inWidth * n;
        if (strideWidth === 1) {
          const from = rowStart + (owFrom + kw - padInfo.left) * n;
          heap.copyWithin(to + owFrom * n, from, from + (owTo - owFrom) * n);
          continue;
        }
        for (let ow = owFrom; ow < owTo; ow++) {
          const from = rowStart + (strideWidth * ow + kw - padInfo.left) * n;
          const at = to + ow * n;
          for (let b = 0; b < n; b++) heap[at + b] = heap[from + b]!;
        }
      }
    }
  }
}

/**
 * Filter gradient as one matrix product per filter row kh:
 * dW[kh, (kw, ci), co] = rows_kh[(kw, ci), (oh, ow, n)] * dy[(oh, ow, n), co], where rows_kh
 * holds the input pixels each (kw, ci) tap read (built by block copies from x as
 * [ci, h, w, n]) and dy is laid out [oh, ow, n, co]. XNNPACK packs dy once (the product's
 * weights, cached on dy's id for all kh) and runs a plain GEMM with the whole batch and image
 * as its inner dimension. The conv route of conv2d-backprop-filter.ts does the same
 * multiply-adds through an indirection buffer with only the batch (32 floats) per step, at
 * about half the forward conv's rate on 24x24 activations; this runs near the forward's.
 */
export function filterGradientByTapRows(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { batchSize, inChannels, outChannels, outHeight, outWidth, filterHeight, filterWidth } = info;
  const depth = outHeight * outWidth * batchSize;
  const xT = runWasmKernel(backend, Transpose, { x }, { perm: [3, 1, 2, 0] });
  const dyRows = runWasmKernel(backend, Transpose, { x: dy }, { perm: [1, 2, 0, 3] });
  const b = runWasmKernel(backend, Reshape, { x: dyRows }, { shape: [1, depth, outChannels] });
  const rows = backend.makeOutput([1, filterWidth * inChannels, depth], 'float32');
  const dW = backend.makeOutput([filterHeight, filterWidth, inChannels, outChannels], 'float32');
  const block = filterWidth * inChannels * outChannels;
  for (let kh = 0; kh < filterHeight; kh++) {
    fillTapRows(heapFloats(backend), heapFloatIndex(backend, xT), heapFloatIndex(backend, rows), kh, info);
    const product = runWasmKernel(backend, BatchMatMul, { a: rows, b }, { transposeA: false, transposeB: false });
    const heap = heapFloats(backend);
    const from = heapFloatIndex(backend, product);
    heap.copyWithin(heapFloatIndex(backend, dW) + kh * block, from, from + block);
    backend.disposeData(product.dataId);
  }
  disposeAll(backend, [xT, dyRows, b, rows]);
  return dW;
}
